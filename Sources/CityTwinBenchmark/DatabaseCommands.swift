import Foundation

/// The database's own command-line tools, run beside the server: sizes, and maintenance before timing.
extension Benchmark {
    /// Runs `path` with `arguments` and waits: its exit status and standard output; nil when it is not installed.
    func command(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String)? {
        guard FileManager.default.isExecutableFile(atPath: path) else { return nil }
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// PostgreSQL, after a bulk load and before its queries are timed: the maintenance the load leaves for
    /// autovacuum and the checkpointer (statistics, visibility maps, the load's dirty pages), done now and
    /// waited for, so that the latencies are those of a database that is not still digesting the load.
    /// SQLite has no such deferred work (its log is checkpointed as it grows).
    func settle(_ what: String) throws {
        guard let database else { return }
        let start = ContinuousClock.now
        guard try command("/usr/bin/psql", [database, "-qAt", "-c", "VACUUM ANALYZE", "-c", "CHECKPOINT"])?.status == 0 else {
            throw Load.Failure(description: "psql VACUUM ANALYZE; CHECKPOINT failed")
        }
        say(String(format: "\(what): VACUUM ANALYZE and CHECKPOINT after the load: %.1f s", (ContinuousClock.now - start).seconds))
    }
}
