import Foundation

/// A bounded, reproducible fuzz loop: case `i` draws from `SeededGenerator(seed: seed &+ i)`,
/// so a failing case is replayed from its seed and index alone.
///
/// By default it runs `iterations` cases. With `IM_FUZZ_SECONDS=<n>` in the environment it
/// runs as many cases as fit in `n` seconds instead (at least `iterations`), for longer local runs;
/// `IM_FUZZ_SEED=<n>` changes the base seed.
public struct FuzzBudget: Sendable {
    /// The base seed.
    public let seed: UInt64
    /// The number of cases to run when no time budget is set.
    public let iterations: Int
    /// The time budget from `IM_FUZZ_SECONDS`, if set.
    public let duration: Duration?

    public init(seed: UInt64, iterations: Int) {
        let environment = ProcessInfo.processInfo.environment
        self.seed = environment["IM_FUZZ_SEED"].flatMap(UInt64.init) ?? seed
        self.iterations = iterations
        self.duration = environment["IM_FUZZ_SECONDS"].flatMap(Double.init).map { .milliseconds(Int64($0 * 1000)) }
    }

    /// Runs `body` for each case with its own generator; returns the number of cases run.
    @discardableResult
    public func run(_ body: (_ index: Int, _ random: inout SeededGenerator) throws -> Void) rethrows -> Int {
        let end = duration.map { ContinuousClock.now + $0 }
        var index = 0
        while index < iterations || (end.map { ContinuousClock.now < $0 } ?? false) {
            var random = SeededGenerator(seed: seed &+ UInt64(index))
            try body(index, &random)
            index += 1
        }
        return index
    }

    /// Runs `body` for each case with its own generator; returns the number of cases run.
    @discardableResult
    public func run(_ body: (_ index: Int, _ random: inout SeededGenerator) async throws -> Void) async rethrows -> Int
    {
        let end = duration.map { ContinuousClock.now + $0 }
        var index = 0
        while index < iterations || (end.map { ContinuousClock.now < $0 } ?? false) {
            var random = SeededGenerator(seed: seed &+ UInt64(index))
            try await body(index, &random)
            index += 1
        }
        return index
    }
}

/// Byte-level mutations for fuzzing: bit flips, interesting bytes, insertions, deletions,
/// duplicated and swapped ranges, truncation.
public enum Mutator {
    /// Bytes that often sit on a boundary.
    public static let interestingBytes: [UInt8] = [
        0x00, 0x01, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x22, 0x5C, 0x7B, 0x7D,
        0x2E, 0x3A, 0x2C, 0xC0, 0xED, 0xF4, 0xF8,
    ]

    /// `bytes` with 1 to `maxMutations` random mutations applied.
    public static func mutate(_ bytes: [UInt8], maxMutations: Int = 4, using random: inout SeededGenerator) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<Int.random(in: 1...max(maxMutations, 1), using: &random) {
            mutateOnce(&bytes, using: &random)
        }
        return bytes
    }

    /// Applies one random mutation.
    public static func mutateOnce(_ bytes: inout [UInt8], using random: inout SeededGenerator) {
        let index = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<9, using: &random) {
        case 0 where !bytes.isEmpty:
            bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case 1 where !bytes.isEmpty:
            bytes[index] = interestingBytes.randomElement(using: &random)!
        case 2 where !bytes.isEmpty:
            bytes[index] = UInt8.random(in: 0...255, using: &random)
        case 3:
            let count = Int.random(in: 1...8, using: &random)
            let insert = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            bytes.insert(contentsOf: insert, at: bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random))
        case 4 where !bytes.isEmpty:
            let end = min(bytes.count, index + Int.random(in: 1...8, using: &random))
            bytes.removeSubrange(index..<end)
        case 5 where !bytes.isEmpty:
            let end = min(bytes.count, index + Int.random(in: 1...32, using: &random))
            let slice = Array(bytes[index..<end])
            bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &random))
        case 6 where !bytes.isEmpty:
            bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &random)...)
        case 7 where bytes.count > 1:
            let other = Int.random(in: 0..<bytes.count, using: &random)
            bytes.swapAt(index, other)
        default:
            if !bytes.isEmpty { bytes[index] = bytes[index] &+ UInt8.random(in: 1...3, using: &random) }
        }
    }

    /// `bytes` cut into random chunks (some empty), as a socket might deliver them.
    public static func chunks(of bytes: [UInt8], using random: inout SeededGenerator) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let size = Int.random(
                in: 0...min(bytes.count - start, Bool.random(using: &random) ? 4 : 256), using: &random)
            chunks.append(Array(bytes[start..<start + size]))
            start += size
        }
        return chunks
    }
}
