import Hummingbird
import ImCore
import ImHelper
import NIOCore

extension APIRoutes {
    /// The most items in one `POST /v1/batch` or `POST /v1/connect-urls`.
    static let maximumBatchItems = 1000

    /// `POST /v1/batch` (many messages, any mix of users, channels and broadcasts) and
    /// `POST /v1/connect-urls` (many connect URLs). Both answer 200 with one result per item,
    /// in order; an item that fails carries its own error and the others go ahead. A body that
    /// is not such a request (not an object, no array, more than ``maximumBatchItems``, larger
    /// than ``maximumBodyBytes``) fails as a whole.
    func registerBatches(on api: RouterGroup<BasicRequestContext>) {
        api.post("batch") { request, context -> Response in
            let body = try await RequestBody.read(request, limit: Self.maximumBodyBytes)
            var items = try body.elementCursor("messages")
            var messages: [OutgoingMessage] = []
            // Per item: why it was refused before sending, or nil.
            var refused: [APIError?] = []
            messages.reserveCapacity(min(body.bytes.count / 32, Self.maximumBatchItems))
            refused.reserveCapacity(messages.capacity)
            // Each item is read where the walk finds it: on the common path (read once), else
            // stepped over and read the general way, which names what is wrong with it.
            while let start = items.next() {
                guard refused.count < Self.maximumBatchItems else {
                    throw APIError.invalidRequest(
                        "'messages' has more than \(Self.maximumBatchItems) items; a batch takes at most \(Self.maximumBatchItems)"
                    )
                }
                if let (message, end) = BatchItem.read(in: body, at: start) {
                    items.finishElement(endingAt: end)
                    messages.append(message)
                    refused.append(nil)
                    continue
                }
                guard let range = items.skipElement() else { break }
                do {
                    let item = try RequestBody(itemOf: body, range: range, element: ("messages", refused.count))
                    messages.append(try OutgoingMessage.batchItem(item))
                    refused.append(nil)
                } catch {
                    refused.append(APIError(describing: error, logger: context.logger))
                }
            }
            guard items.isComplete else { throw APIError.invalidRequest("'messages' is not an array of items") }
            guard !refused.isEmpty else { throw APIError.invalidRequest("'messages' must have at least one item") }
            let results = await helper.submit(messages)
            var next = 0
            var failed = 0
            return JSONResponse.ok(capacity: 48 * refused.count + 32) { buffer in
                buffer.writeStaticString(#"{"results":["#)
                for index in refused.indices {
                    if index > 0 { buffer.writeStaticString(",") }
                    if let error = refused[index] {
                        failed += 1
                        buffer.writeError(error)
                        continue
                    }
                    defer { next += 1 }
                    switch results[next] {
                    case .success(let result):
                        buffer.writeSendResult(result, withOffline: messages[next].isToUsers)
                    case .failure(let error):
                        failed += 1
                        buffer.writeError(APIError(describing: error, logger: context.logger))
                    }
                }
                buffer.writeStaticString(#"],"failed":"#)
                buffer.writeString(String(failed))
                buffer.writeStaticString("}")
            }
        }
        api.post("connect-urls") { request, context -> Response in
            let body = try await RequestBody.read(request, limit: Self.maximumBodyBytes)
            let items = try Self.items(of: body, named: "clients")
            var failed = 0
            var buffer = ByteBufferAllocator().buffer(capacity: 320 * items.count + 32)
            buffer.writeStaticString(#"{"urls":["#)
            for (index, range) in items.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                do {
                    let item = try RequestBody(itemOf: body, range: range, element: ("clients", index))
                    let (client, meta) = try item.connectURLRequest()
                    let url = try await helper.connectURL(for: client, meta: meta)
                    buffer.writeStaticString(#"{"client":"#)
                    buffer.writeJSONString(client.rawValue)
                    buffer.writeStaticString(#","url":"#)
                    buffer.writeJSONString(url)
                    buffer.writeStaticString("}")
                } catch {
                    failed += 1
                    buffer.writeError(APIError(describing: error, logger: context.logger))
                }
            }
            buffer.writeStaticString(#"],"failed":"#)
            buffer.writeString(String(failed))
            buffer.writeStaticString("}")
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
        }
    }

    /// The items of the array member `name` of a batch body: at least one, at most
    /// ``maximumBatchItems``.
    private static func items(of body: RequestBody, named name: String) throws(APIError) -> [Range<Int>] {
        let items = try body.elements(name)
        guard !items.isEmpty else { throw .invalidRequest("'\(name)' must have at least one item") }
        guard items.count <= maximumBatchItems else {
            throw .invalidRequest("'\(name)' has \(items.count) items; a batch takes at most \(maximumBatchItems)")
        }
        return items
    }
}

extension OutgoingMessage {
    /// Whether the message goes to users (its result lists who was offline).
    fileprivate var isToUsers: Bool {
        if case .users = target { return true }
        return false
    }
}
