/// Well-Known Binary (little-endian, two-dimensional): how geometries are stored and handed to GEOS.
public enum WKB {
    enum Code: UInt32 {
        case point = 1, lineString, polygon, multiPoint, multiLineString, multiPolygon, collection
    }

    public static func encode(_ geometry: Geometry) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(geometry, into: &out)
        return out
    }

    /// Lower-case hexadecimal text of the bytes.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The position of a stored Point, read without GEOS; nil for any other geometry.
    public static func point(_ bytes: UnsafeRawBufferPointer) -> Position? {
        guard bytes.count == 21, bytes[0] == 1, bytes.loadUnaligned(fromByteOffset: 1, as: UInt32.self).littleEndian == Code.point.rawValue else { return nil }
        let x = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: 5, as: UInt64.self).littleEndian)
        let y = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: 13, as: UInt64.self).littleEndian)
        return Position(x, y)
    }

    static func write(_ geometry: Geometry, into out: inout [UInt8]) {
        out.append(1)  // little-endian
        switch geometry {
        case .point(let p):
            put(Code.point.rawValue, &out)
            put(p, &out)
        case .lineString(let points):
            put(Code.lineString.rawValue, &out)
            put(points, &out)
        case .polygon(let rings):
            put(Code.polygon.rawValue, &out)
            put(UInt32(rings.count), &out)
            for ring in rings { put(ring, &out) }
        case .multiPoint(let points):
            put(Code.multiPoint.rawValue, &out)
            put(UInt32(points.count), &out)
            for p in points { write(.point(p), into: &out) }
        case .multiLineString(let lines):
            put(Code.multiLineString.rawValue, &out)
            put(UInt32(lines.count), &out)
            for line in lines { write(.lineString(line), into: &out) }
        case .multiPolygon(let polygons):
            put(Code.multiPolygon.rawValue, &out)
            put(UInt32(polygons.count), &out)
            for polygon in polygons { write(.polygon(polygon), into: &out) }
        case .collection(let geometries):
            put(Code.collection.rawValue, &out)
            put(UInt32(geometries.count), &out)
            for g in geometries { write(g, into: &out) }
        }
    }

    static func put(_ value: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func put(_ p: Position, _ out: inout [UInt8]) {
        withUnsafeBytes(of: p.longitude.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: p.latitude.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }

    static func put(_ points: [Position], _ out: inout [UInt8]) {
        put(UInt32(points.count), &out)
        for p in points { put(p, &out) }
    }
}
