import ArgumentParser
import CityTwinApp
import Foundation

/// Where each setting comes from: its flag, else its environment variable, else the configuration file,
/// else the default.
struct Settings {
    let environment: [String: String]
    let file: ConfigurationFile
    /// The file's keys that a command reads; any other key in the file is refused as a likely typo.
    static let keys: Set<String> = [
        "data-dir", "database", "log-level", "host", "port", "body-limit", "max-limit", "jwt-secret", "public-url",
        "history-retention-days", "keep-history-of-deleted-entities", "cached-entities", "temporal-instance-limit", "mqtt-broker", "mqtt-ca-file",
        "device-report-interval", "allow-anonymous-writes",
    ]

    /// Reads the file named by `--config`, else by `CITYTWIN_CONFIG`; none: only flags, environment and defaults.
    init(configPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        guard let path = configPath ?? environment["CITYTWIN_CONFIG"], !path.isEmpty else {
            self.file = ConfigurationFile()
            return
        }
        do {
            file = try ConfigurationFile.load(path: path)
        } catch let error as ConfigurationFile.ParseError {
            throw ValidationError("\(path): \(error)")
        } catch {
            throw ValidationError("cannot read the configuration file \(path): \(error.localizedDescription)")
        }
        let unknown = Set(file.values.keys).subtracting(Self.keys).sorted()
        guard unknown.isEmpty else {
            throw ValidationError("\(path): unknown key \(unknown.joined(separator: ", ")); known keys: \(Self.keys.sorted().joined(separator: ", "))")
        }
    }

    /// The setting `key` (the flag's name) as text.
    func string(_ flag: String?, key: String, env: String) -> String? {
        flag ?? environment[env] ?? file[key]?.text
    }

    func integer(_ flag: Int?, key: String, env: String) throws -> Int? {
        if let flag { return flag }
        if let text = environment[env] {
            guard let n = Int(text) else { throw ValidationError("\(env)=\(text) is not a number") }
            return n
        }
        switch file[key] {
        case nil: return nil
        case .integer(let n): return n
        case .string(let s):
            guard let n = Int(s) else { throw ValidationError("\(key) = \(s) in the configuration file is not a number") }
            return n
        case .boolean: throw ValidationError("\(key) in the configuration file must be a number")
        }
    }

    /// An on/off setting: on if the flag is given, or the variable is `true`, or the file says `true`.
    func boolean(_ flag: Bool, key: String, env: String) throws -> Bool {
        if flag { return true }
        if let text = environment[env] { return text == "true" }
        switch file[key] {
        case nil: return false
        case .boolean(let b): return b
        default: throw ValidationError("\(key) in the configuration file must be true or false")
        }
    }
}
