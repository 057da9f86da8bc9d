import Crypto
import ExtrasBase64
import Foundation
import ImJSON
import NIOCore

extension ConnectTokens {
    /// The claims of an HS256 token signed with the key `signer` holds, or `nil` when the token's
    /// header asks for something else (the key collection decides those).
    ///
    /// The signature is checked on the token's bytes before any part of it is decoded, so a
    /// forged token costs one HMAC and nothing it carries is parsed; the header and claims are
    /// then read by ``FlatJSONObject`` rather than `JSONDecoder` (this runs once per handshake).
    static func verifiedHS256(_ token: String, signer: HMAC<SHA256>) throws(TokenError) -> ConnectClaims? {
        let bytes = Array(token.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("not a JWT (three dot-separated parts)") }
        guard let signature = base64URLDecoded(parts[2]) else { throw .malformed("signature is not base64url") }
        let signed = bytes[..<parts[1].endIndex]
        var mac = signer
        mac.update(data: signed)
        // A comparison in constant time (swift-crypto's `==` of a code and bytes).
        guard mac.finalize() == signature else { throw .badSignature }
        if !standardHeaders.contains(where: { $0.elementsEqual(parts[0]) }) {
            let header = try members(of: parts[0], name: "header")
            guard header["alg"]?.value == .string("HS256"), header["kid"] == nil else { return nil }
        }
        let claims = try members(of: parts[1], name: "claims")
        guard case .string(let sub)? = claims["sub"]?.value else { throw .malformed("sub must be a string") }
        guard case .number(let exp)? = claims["exp"]?.value else { throw .malformed("exp must be a number") }
        guard case .string(let jti)? = claims["jti"]?.value else { throw .malformed("jti must be a string") }
        let meta: String?
        switch claims["meta"]?.value {
        case nil, .null?: meta = nil
        case .string(let text)?: meta = text
        case .number?, .other?: throw .malformed("meta must be a string or null")
        }
        return ConnectClaims(
            client: ClientID(rawValue: sub), expires: Date(timeIntervalSince1970: exp), id: jti,
            meta: meta)
    }

    /// A token written in place with HS256 and the key `signer` holds: the header `{"alg":"HS256","typ":"JWT"}`
    /// (one ``verifiedHS256(_:signer:)`` skips reading), the claims as jwt-kit writes them (`exp`
    /// in seconds since 1970, no `meta` when there is none). No hop to the key collection's actor
    /// and no `JSONEncoder`: this runs once per connect URL, a thousand times per batch.
    static func mintedHS256(_ claims: ConnectClaims, signer: HMAC<SHA256>) -> String {
        var json = ByteBuffer()
        json.reserveCapacity(96 + claims.sub.value.utf8.count + (claims.meta?.utf8.count ?? 0))
        json.writeStaticString(#"{"sub":"#)
        json.writeJSONString(claims.sub.value)
        json.writeStaticString(#","exp":"#)
        json.writeString(String(claims.exp.value.timeIntervalSince1970))
        json.writeStaticString(#","jti":"#)
        json.writeJSONString(claims.jti.value)
        if let meta = claims.meta {
            json.writeStaticString(#","meta":"#)
            json.writeJSONString(meta)
        }
        json.writeStaticString("}")
        let options: Base64.EncodingOptions = [.base64UrlAlphabet, .omitPaddingCharacter]
        var token = standardHeaders[1]
        token.append(UInt8(ascii: "."))
        token += Base64.encodeToBytes(bytes: json.readableBytesView, options: options)
        var mac = signer
        mac.update(data: token)
        let signature = mac.finalize()
        token.append(UInt8(ascii: "."))
        token += signature.withUnsafeBytes { Base64.encodeToBytes(bytes: $0, options: options) }
        return String(decoding: token, as: UTF8.self)
    }

    static func members(of part: ArraySlice<UInt8>, name: String) throws(TokenError) -> FlatJSONObject.Members {
        guard let json = base64URLDecoded(part) else { throw .malformed("\(name) is not base64url") }
        do {
            return try FlatJSONObject.fields(of: json)
        } catch {
            throw .malformed("\(name) is not a JSON object: \(error.detail)")
        }
    }

    /// `{"typ":"JWT","alg":"HS256"}` and `{"alg":"HS256","typ":"JWT"}` (what most libraries
    /// write, ``mintedHS256(_:signer:)`` included; jwt-kit writes either, its header being a
    /// dictionary), encoded: such a header needs no reading.
    private static let standardHeaders = [
        Array("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9".utf8),
        Array("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9".utf8),
    ]

    /// The bytes `text` encodes in unpadded base64url (RFC 4648 §5), or `nil` (other characters,
    /// padding, a length no encoding has, or stray bits in the last character).
    static func base64URLDecoded(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 4 != 1 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.count * 3 / 4)
        var bits: UInt32 = 0
        var count = 0
        for character in text {
            guard let value = sextet(character) else { return nil }
            bits = bits << 6 | value
            count += 6
            if count >= 8 {
                count -= 8
                bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
                bits &= (1 << UInt32(count)) - 1
            }
        }
        return bits == 0 ? bytes : nil
    }

    private static func sextet(_ character: UInt8) -> UInt32? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(character - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(character - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(character - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
