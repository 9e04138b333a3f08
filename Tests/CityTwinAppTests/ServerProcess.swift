import Foundation
import Synchronization

/// The real `citytwin` binary, started on a free loopback port for end-to-end tests.
final class ServerProcess: Sendable {
    let process: Process
    let port: Int
    private let output: OutputBuffer

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["CITYTWIN_BINARY"] { return URL(fileURLWithPath: path) }
        // Tests/CityTwinAppTests/ServerProcess.swift → package root → .build/debug/citytwin
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/citytwin")
    }

    struct StartError: Error, CustomStringConvertible { let description: String }

    /// Starts `citytwin serve --port 0 …` and waits until it says where it listens.
    init(arguments: [String]) async throws {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0"] + arguments
        // The server's output goes to a file that is polled: no pipe reader thread to keep alive.
        let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        let output = OutputBuffer(url: logURL)
        try process.run()
        self.process = process
        self.output = output
        let deadline = Date().addingTimeInterval(60)
        while true {
            let text = output.text
            if let range = text.range(of: "listening on 127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits) {
                    self.port = port
                    return
                }
            }
            if !process.isRunning || Date() > deadline {
                if process.isRunning { process.terminate() }
                throw StartError(description: "the server did not start: \(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    var log: String { output.text }

    /// Sends `signal` and waits for the process to end; returns its exit status (or the signal's number).
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 20) async throws -> Int32 {
        kill(process.processIdentifier, signal)
        let process = self.process
        let ended = Counter()
        let waiter = Thread {
            process.waitUntilExit()
            ended.increment()
        }
        waiter.start()
        let deadline = Date().addingTimeInterval(timeout)
        while ended.value == 0 {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                throw StartError(description: "the server did not stop within \(timeout) s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }
}

/// What the server printed, read back from its log file.
final class OutputBuffer: Sendable {
    let url: URL
    init(url: URL) { self.url = url }
    var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
}
