import Foundation

/// Parses and serialises `JSON` with strict limits, so hostile bodies fail fast with a clear reason.
public enum JSONCoding {
    /// Why a body is not acceptable JSON.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// Nesting deeper than this is refused before decoding.
    public static let maximumDepth = 64

    public static func parse(_ data: Data) throws(ParseError) -> JSON {
        if data.isEmpty { throw ParseError("the body is empty") }
        let result: Result<JSON, ParseError> = data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self), maximumDepth: maximumDepth)
            do throws(ParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public static func parse(_ text: String) throws(ParseError) -> JSON {
        try parse(Data(text.utf8))
    }

    public static func data(_ value: JSON) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(value, into: &out)
        return Data(out)
    }

    public static func string(_ value: JSON) -> String {
        var out = [UInt8]()
        out.reserveCapacity(128)
        write(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The value that `parse(string(value))` gives: what `write` does to numbers, undone the way the parser reads them.
    public static func asWritten(_ value: JSON) -> JSON {
        switch value {
        case .double(let d):
            if !d.isFinite { return .null }
            if d == d.rounded(), abs(d) < 1e15 { return .integer(Int64(d)) }
            return value
        case .array(let a): return .array(a.map(asWritten))
        case .object(let o): return .object(o.mapValues(asWritten))
        case .null, .bool, .integer, .string: return value
        }
    }

    /// Whether `asWritten(value)` is `value` itself: no number in it reads back otherwise (checked without
    /// building anything).
    public static func isAsWritten(_ value: JSON) -> Bool {
        switch value {
        case .double(let d): return d.isFinite && !(d == d.rounded() && abs(d) < 1e15)
        case .array(let a): return a.allSatisfy(isAsWritten)
        case .object(let o): return o.values.allSatisfy(isAsWritten)
        case .null, .bool, .integer, .string: return true
        }
    }

    static func write(_ value: JSON, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            // Keep in step with `asWritten`.
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 {
                out.append(contentsOf: String(Int64(d)).utf8)
            } else if d.isFinite {
                out.append(contentsOf: "\(d)".utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, element) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            // Keys in order, for output that is the same for the same object.
            var first = true
            for (key, member) in o.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: copy their bytes whole.
        var text = s
        let plain = text.withUTF8 { bytes -> Bool in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

