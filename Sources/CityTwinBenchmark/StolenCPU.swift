import Foundation

/// The share of the machine's CPU time its host took (`steal` in `/proc/stat`) over a stretch of the run.
/// On a shared virtual machine a slow figure beside much stolen time says more about the machine than
/// about the server.
struct StolenCPU {
    private let start: (steal: UInt64, total: UInt64)?

    init() {
        start = Self.read()
    }

    /// The machine's `steal` and total CPU time so far, in clock ticks, or nil where `/proc/stat` does not tell.
    static func read() -> (steal: UInt64, total: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        // user nice system idle iowait irq softirq steal (guest time is counted in user already)
        let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard fields.count == 8 else { return nil }
        return (fields[7], fields.reduce(0, +))
    }

    /// Percent of the CPU time since `init` that was stolen.
    var percent: Double? {
        guard let start, let now = Self.read(), now.total > start.total else { return nil }
        return Double(now.steal - start.steal) / Double(now.total - start.total) * 100
    }

    /// For the end of a figure's line: `; host took 3% of the CPU`, or nothing.
    var note: String {
        percent.map { String(format: "; host took %.0f%% of the CPU", $0) } ?? ""
    }
}
