import Foundation

/// The CPU time each part of a run spent over a stretch of it, per operation: the server, PostgreSQL,
/// Mosquitto, and the load generator (this benchmark with its `wrk` children). A rate says what the machine
/// managed while shared; the CPU an operation costs says what a target rate asks of it: at 200 µs an
/// operation, 20,000 a second need 4 cores, whatever the load of the hour.
struct CPUUse {
    private let serverPID: Int32
    private let start: [Double]

    /// The parts, in the order they are read and printed.
    static let parts = ["server", "PostgreSQL", "Mosquitto", "load generator"]

    init(serverPID: Int32) {
        self.serverPID = serverPID
        start = Self.read(serverPID: serverPID)
    }

    /// `; CPU each: server 197 µs, load generator 3 µs (4.0 cores at 20000/s)`: the parts that took any,
    /// and the cores all of them together would take at the target rate.
    func note(operations: Double, target: Double) -> String {
        guard operations > 0 else { return "" }
        let each = zip(Self.read(serverPID: serverPID), start).map { ($0 - $1) / operations }
        let named = zip(Self.parts, each).filter { $0.1 >= 0.5e-6 }.map { $0.0 + String(format: " %.0f µs", $0.1 * 1e6) }
        return "; CPU each: " + named.joined(separator: ", ") + String(format: " (%.1f cores at %.0f/s)", each.reduce(0, +) * target, target)
    }

    static func read(serverPID: Int32) -> [Double] {
        [seconds(of: serverPID) ?? 0, seconds(named: "postgres"), seconds(named: "mosquitto"), seconds(of: getpid()) ?? 0]
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// A process's CPU time, its own and that of the children it has waited for (utime, stime, cutime,
    /// cstime in `/proc/PID/stat`), in seconds; nil when it is gone.
    static func seconds(of pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the name in parentheses: state is field 3, so utime (field 14) is the 12th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 14 else { return nil }
        return fields[11...14].compactMap { Double($0) }.reduce(0, +) / ticksPerSecond
    }

    /// The CPU time of every process of that name (`/proc/PID/comm`); 0 where none runs.
    static func seconds(named name: String) -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var total = 0.0
        for entry in entries {
            guard let pid = Int32(entry), let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
                comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
            else { continue }
            total += seconds(of: pid) ?? 0
        }
        return total
    }
}
