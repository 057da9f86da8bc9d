import ImCore
import NIOCore
import NIOPosix
import Testing

/// Tasks that prefer a loop's executor run on that loop's thread, across suspensions.
@Suite struct EventLoopTaskExecutorTests {
    @Test func tasksRunOnTheLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let other = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let onLoop = await Task(executorPreference: executor) { () async -> [Bool] in
            var seen = [loop.inEventLoop]
            // A suspension that resumes from another thread comes back to the loop.
            _ = try? await other.submit { 1 }.get()
            seen.append(loop.inEventLoop)
            await Task.yield()
            seen.append(loop.inEventLoop)
            return seen
        }.value
        #expect(onLoop == [true, true, true])
        // Without the preference the same code runs on the global pool.
        #expect(await Task { loop.inEventLoop }.value == false)
        try await group.shutdownGracefully()
    }
}
