import CGEOS

/// One GEOS context and the geometries made in it. GEOS contexts are not thread-safe: an instance is used by
/// one thread at a time (callers hold it under a lock or keep it to one task).
final class GEOS {
    let handle: GEOSContextHandle_t
    private let reader: OpaquePointer

    init() {
        handle = GEOS_init_r()
        reader = GEOSWKBReader_create_r(handle)
    }

    deinit {
        GEOSWKBReader_destroy_r(handle, reader)
        GEOS_finish_r(handle)
    }

    /// A GEOS geometry from WKB; the caller destroys it.
    func read(_ wkb: UnsafeRawBufferPointer) -> OpaquePointer? {
        guard let base = wkb.baseAddress else { return nil }
        return GEOSWKBReader_read_r(handle, reader, base.assumingMemoryBound(to: UInt8.self), wkb.count)
    }

    func read(_ wkb: [UInt8]) -> OpaquePointer? {
        wkb.withUnsafeBytes { read($0) }
    }

    func destroy(_ geometry: OpaquePointer) {
        GEOSGeom_destroy_r(handle, geometry)
    }

    /// nil when valid, else GEOS's reason (e.g. "Self-intersection[…]").
    func invalidity(_ geometry: OpaquePointer) -> String? {
        if GEOSisValid_r(handle, geometry) == 1 { return nil }
        guard let reason = GEOSisValidReason_r(handle, geometry) else { return "invalid geometry" }
        defer { GEOSFree_r(handle, reason) }
        return String(cString: reason)
    }

    /// The closest pair of points of two geometries (planar in degrees), or nil if either is empty.
    func nearestPoints(_ a: OpaquePointer, _ b: OpaquePointer) -> (Position, Position)? {
        guard let sequence = GEOSNearestPoints_r(handle, a, b) else { return nil }
        defer { GEOSCoordSeq_destroy_r(handle, sequence) }
        var (x1, y1, x2, y2) = (0.0, 0.0, 0.0, 0.0)
        guard GEOSCoordSeq_getXY_r(handle, sequence, 0, &x1, &y1) == 1, GEOSCoordSeq_getXY_r(handle, sequence, 1, &x2, &y2) == 1 else { return nil }
        return (Position(x1, y1), Position(x2, y2))
    }
}
