import NIOCore

/// Runs Swift tasks on one NIO event loop.
///
/// A handshake's asynchronous steps (the token check, the connection's registration) run as
/// tasks that prefer this executor: with a backplane that answers without I/O (the embedded
/// one) they finish on the connection's own thread in the same loop turn, instead of hopping to
/// the global pool and back (two thread wake-ups per step). A backplane that does I/O resumes
/// them here too.
final class LoopTaskExecutor: TaskExecutor {
    /// The loop the tasks run on.
    let eventLoop: any EventLoop

    /// An executor running jobs on `eventLoop`.
    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
