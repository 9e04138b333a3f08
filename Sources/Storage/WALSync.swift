import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Syncs SQLite's write-ahead log to disk behind the writer: group commit's transactions commit with
/// `synchronous=NORMAL` (their pages written to the log, not yet synced), and each one's `Durability`
/// completes after an `fdatasync` of the log that began after its commit. One sync covers every commit
/// before it, so while the disk syncs, the writer goes on with the next transaction.
///
/// The log's pages reach it in commit order and SQLite recovers the longest valid prefix of the log, so a
/// transaction reported durable survives a crash of the machine, together with every one before it. A
/// crash of the process alone loses nothing: the pages are in the operating system's cache.
final class WALSync: Sendable {
    private struct State {
        var pending: [Durability] = []
        var syncing = false
    }

    /// The open log and its inode (descriptor -1 before the first sync). Only the sync queue uses it, so
    /// the writer never waits for it while a sync opens a log.
    private struct Log {
        var descriptor: Int32 = -1
        var inode: UInt64 = 0
    }

    private let state = Mutex(State())
    private let log = Mutex(Log())
    private let databasePath: String
    private let queue = DispatchQueue(label: "citytwin.wal-sync", qos: .userInitiated)

    init(databasePath: String) {
        self.databasePath = databasePath
    }

    deinit {
        let descriptor = log.withLock { $0.descriptor }
        if descriptor >= 0 { close(descriptor) }
    }

    /// A durability for a transaction that has just committed.
    func committed() -> Durability {
        let durability = Durability()
        let start = state.withLock { state -> Bool in
            state.pending.append(durability)
            if state.syncing { return false }
            state.syncing = true
            return true
        }
        if start { queue.async { self.drain() } }
        return durability
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [Durability] in
                let batch = state.pending
                state.pending = []
                if batch.isEmpty { state.syncing = false }
                return batch
            }
            if batch.isEmpty { return }
            let outcome = Result { try sync() }
            for durability in batch { durability.complete(outcome) }
        }
    }

    /// Syncs the log's data; opens it first, or again if SQLite made a new one. Without a log (none was
    /// written, or a checkpoint moved all of it into the database file) it syncs the database file.
    private func sync() throws {
        let walPath = databasePath + "-wal"
        var info = stat()
        guard stat(walPath, &info) == 0 else {
            try Self.sync(path: databasePath)
            return
        }
        let descriptor = try log.withLock { log -> Int32 in
            if log.descriptor >= 0, log.inode == UInt64(info.st_ino) { return log.descriptor }
            if log.descriptor >= 0 { close(log.descriptor) }
            log.descriptor = -1
            let fd = open(walPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw WALSyncError(operation: "open \(walPath)", code: errno) }
            // A new log's name is in its directory: that too has to reach the disk.
            do { try Self.sync(path: URL(fileURLWithPath: walPath).deletingLastPathComponent().path) } catch {
                close(fd)
                throw error
            }
            log.descriptor = fd
            log.inode = UInt64(info.st_ino)
            return fd
        }
        guard fdatasync(descriptor) == 0 else { throw WALSyncError(operation: "fdatasync \(walPath)", code: errno) }
    }

    private static func sync(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WALSyncError(operation: "open \(path)", code: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WALSyncError(operation: "fsync \(path)", code: errno) }
    }
}

/// The disk refused a sync of SQLite's log: what was committed may not survive a crash of the machine.
struct WALSyncError: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    var description: String { "\(operation) failed: \(String(cString: strerror(code)))" }
}
