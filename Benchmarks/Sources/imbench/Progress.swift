/// Prints a progress line to standard error every second while a phase runs.
enum Progress {
    /// Runs `body`; meanwhile, every second, prints what `line` returns for the seconds elapsed.
    static func reporting<T: Sendable>(
        _ line: @escaping @Sendable (Double) async -> String?,
        while body: () async throws -> T
    ) async rethrows -> T {
        let start = MonotonicClock.now()
        let ticker = Task {
            var next = 1
            while !Task.isCancelled {
                let target = start + UInt64(next) * 1_000_000_000
                let now = MonotonicClock.now()
                if target > now { try? await Task.sleep(for: .nanoseconds(Int64(target - now))) }
                guard !Task.isCancelled else { return }
                if let text = await line(MonotonicClock.seconds(from: start, to: MonotonicClock.now())) {
                    Console.log(text)
                }
                next += 1
            }
        }
        defer { ticker.cancel() }
        return try await body()
    }
}

/// The single line a run ends with on standard output: `RESULT key=value …`, in a fixed order.
struct ResultLine {
    private var fields: [String] = []

    init(scenario: String) {
        fields.append("scenario=" + scenario)
    }

    mutating func add(_ key: String, _ value: Int) { fields.append("\(key)=\(value)") }

    mutating func add(_ key: String, _ value: Double, decimals: Int = 3) {
        fields.append("\(key)=\(format(value, decimals: decimals))")
    }

    mutating func add(_ key: String, _ value: String) { fields.append("\(key)=\(value)") }

    /// Adds `value`, or `-` when it is unknown.
    mutating func add(_ key: String, _ value: Int?) { fields.append("\(key)=\(value.map(String.init) ?? "-")") }

    /// The line.
    var text: String { "RESULT " + fields.joined(separator: " ") }
}

/// `value` with `decimals` digits after the point, without Foundation's locale handling.
func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let digits = String(fraction)
    return sign + String(whole) + "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
}
