import Hummingbird
import ImCore
import ImHelper
import NIOCore

/// Responses of the hot endpoints, written straight into a buffer instead of through
/// `JSONEncoder` (a tenth of a send request's CPU went to encoding `{"id":…}`).
enum JSONResponse {
    /// 200 with the JSON that `write` puts in the body.
    static func ok(capacity: Int = 64, _ write: (inout ByteBuffer) -> Void) -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        write(&buffer)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
    }
}

extension ByteBuffer {
    /// `{"id":…}`, and the `offline` list when `withOffline`.
    mutating func writeSendResult(_ result: SendResult, withOffline: Bool) {
        guard withOffline else {
            // A batch answers a thousand of these: one write each.
            writeJSONString(result.id, after: #"{"id":"#, before: "}")
            return
        }
        writeJSONString(result.id, after: #"{"id":"#, before: #","offline":["#)
        for (index, client) in result.offline.enumerated() {
            if index > 0 { writeStaticString(",") }
            writeJSONString(client.rawValue)
        }
        writeStaticString("]}")
    }

    /// `{"url":…}`.
    mutating func writeConnectURL(_ url: String) {
        writeJSONString(url, after: #"{"url":"#, before: "}")
    }

    /// `{"error":{"code":…,"message":…}}`.
    mutating func writeError(_ error: APIError) {
        writeStaticString(#"{"error":{"code":"#)
        writeJSONString(error.code)
        writeStaticString(#","message":"#)
        writeJSONString(error.message)
        writeStaticString("}}")
    }
}
