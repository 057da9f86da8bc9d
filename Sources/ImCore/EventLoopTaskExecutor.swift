public import NIOCore

/// Runs Swift tasks on one NIO event loop.
///
/// Work that starts on a loop and waits on I/O of that same loop (a handshake's token check and
/// registration, an API request's presence lookup and publish) resumes on the loop's own
/// thread instead of hopping to the global pool and back: each hop wakes a sleeping thread,
/// which at a few thousand requests a second costs more than the work itself. A task that
/// prefers this executor and does nothing else also finishes in the loop turn it started in.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop the tasks run on.
    public let eventLoop: any EventLoop

    /// An executor running jobs on `eventLoop`.
    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
