import CityKit
import Foundation
import Storage
import Testing

@testable import Twin

/// History on SQLite and PostgreSQL: instances written with every update, time filters, lastN, paging,
/// aggregations over a real day of minute readings, direct history writes, deletion and retention.
@Suite struct TemporalTests {
    let core = CoreContext.context
    static let pm25 = "https://uri.etsi.org/ngsi-ld/default-context/pm25"
    static let temperature = "https://uri.etsi.org/ngsi-ld/default-context/temperature"

    struct Services {
        let entities: EntityService
        let temporal: TemporalService
        let history: SQLHistoryStore
    }

    func withServices(_ kind: DialectKind, keepHistory: Bool = false, instanceLimit: Int = 1000, _ body: @Sendable (Services) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let entities = EntityService(store: try await SQLEntityStore.open(database, keepHistoryOfDeletedEntities: keepHistory))
            let history = try await SQLHistoryStore.open(database)
            try await body(Services(entities: entities, temporal: TemporalService(history: history, entities: entities, instanceLimit: instanceLimit), history: history))
        }
    }

    func plan(_ s: Services, _ configure: (inout TemporalService.Parameters) -> Void) throws -> TemporalService.Plan {
        var p = TemporalService.Parameters()
        configure(&p)
        return try s.temporal.plan(p, context: core, requireFilter: false)
    }

    func values(_ s: Services, _ id: String, _ configure: (inout TemporalService.Parameters) -> Void) async throws -> [Double] {
        let plan = try plan(s, configure)
        let series = try await s.history.history(of: [id], tenant: .default, query: plan.query)
        return series.filter { $0.name == Self.pm25 }.flatMap { $0.instances.compactMap { $0["value"]?.numberValue } }
    }

    static func station(_ n: Int, pm25: Double, at hour: Int) -> JSON {
        [
            "id": .string("urn:ngsi-ld:AirQualityObserved:\(n)"), "type": "AirQualityObserved",
            "pm25": ["type": "Property", "value": .double(pm25), "unitCode": "GQ", "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))],
            "name": ["type": "Property", "value": "莲花山监测站"],
        ]
    }

    @Test(arguments: TestDatabases.kinds)
    func everyUpdateIsKeptAndFiltersApply(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            let id = try await s.entities.create(Self.station(1, pm25: 30, at: 1), context: core, tenant: .default)
            for (value, hour) in [(35.0, 2), (41.0, 3), (38.0, 4)] {
                try await s.entities.partialUpdate(id, attribute: "pm25", ["value": .double(value), "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))], context: core, tenant: .default)
            }
            // A refused update writes no history.
            await #expect(throws: NGSIError.self) {
                try await s.entities.partialUpdate(id, attribute: "pm25", ["value": ["type": "Point"], "type": "GeoProperty"], context: core, tenant: .default)
            }
            #expect(try await values(s, id) { _ in } == [30, 35, 41, 38])
            #expect(try await values(s, id) { $0.timerel = "before"; $0.timeAt = "2026-11-25T03:00:00Z" } == [30, 35])
            #expect(try await values(s, id) { $0.timerel = "after"; $0.timeAt = "2026-11-25T02:00:00Z" } == [41, 38])
            #expect(try await values(s, id) { $0.timerel = "between"; $0.timeAt = "2026-11-25T02:00:00Z"; $0.endTimeAt = "2026-11-25T04:00:00Z" } == [35, 41])
            #expect(try await values(s, id) { $0.lastN = "2" } == [41, 38])
            #expect(try await values(s, id) { $0.timeproperty = "modifiedAt"; $0.timerel = "before"; $0.timeAt = "2000-01-01T00:00:00Z" } == [])

            let valuesPlan = try plan(s) { $0.selection.attrs = "pm25"; $0.options = ["temporalValues"] }
            let (rendered, cut) = try await s.temporal.retrieve(id, plan: valuesPlan, context: core, tenant: .default)
            #expect(cut == nil)
            #expect(rendered["name"] == nil)
            let firstPair = rendered["pm25"]?["values"]?.arrayValue?.first?.arrayValue
            #expect(firstPair?.first?.numberValue == 30)
            #expect(firstPair?.last == "2026-11-25T01:00:00.000Z")
            #expect(rendered["pm25"]?["values"]?.arrayValue?.count == 4)

            // Instances keep their unit and get an instanceId.
            let normalized = try await s.temporal.retrieve(id, plan: try plan(s) { _ in }, context: core, tenant: .default).entity
            let first = try #require(normalized["pm25"]?.arrayValue?.first)
            #expect(first["unitCode"] == "GQ")
            #expect(first["instanceId"]?.stringValue?.hasPrefix("urn:ngsi-ld:Instance:") == true)
            #expect(normalized["name"]?.arrayValue?.first?["value"] == "莲花山监测站")
            // Asking only for attributes it never had still finds the entity, without attributes.
            // (Parameters built without a closure: a closure here was mixed up with one inside an #expect above.)
            var onlyNO2Parameters = TemporalService.Parameters()
            onlyNO2Parameters.selection.attrs = "no2"
            let onlyNO2 = try s.temporal.plan(onlyNO2Parameters, context: core, requireFilter: false)
            #expect(onlyNO2.query.attrs == ["https://uri.etsi.org/ngsi-ld/default-context/no2"])
            let bare = try await s.temporal.retrieve(id, plan: onlyNO2, context: core, tenant: .default).entity
            #expect(bare == ["id": .string(id), "type": "AirQualityObserved"])
            await #expect { _ = try await s.temporal.retrieve("urn:ngsi-ld:AirQualityObserved:none", plan: try plan(s) { _ in }, context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .resourceNotFound
            }
        }
    }

    /// `options=sysAttrs` shows when each instance was stored, and `timeproperty=modifiedAt` orders, filters
    /// and pairs the values by those times, not by `observedAt`: readings that arrive out of order.
    @Test(arguments: TestDatabases.kinds)
    func instancesByTheTimeTheyWereStored(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            let start = Date()
            let id = try await s.entities.create(Self.station(1, pm25: 30, at: 1), context: core, tenant: .default)
            for (value, hour) in [(41.0, 3), (35.0, 2)] {
                // Stored times apart by more than the milliseconds they are shown in.
                try await Task.sleep(for: .milliseconds(5))
                try await s.entities.partialUpdate(id, attribute: "pm25", ["value": .double(value), "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))], context: core, tenant: .default)
            }
            let end = Date()
            func instances(_ configure: (inout TemporalService.Parameters) -> Void) async throws -> [JSON] {
                let plan = try plan(s) { $0.selection.attrs = "pm25"; configure(&$0) }
                return try await s.temporal.retrieve(id, plan: plan, context: core, tenant: .default).entity["pm25"]?.arrayValue ?? []
            }

            let plain = try await instances { _ in }
            #expect(plain.compactMap { $0["value"]?.numberValue } == [30, 35, 41])
            #expect(plain.allSatisfy { $0["createdAt"] == nil && $0["modifiedAt"] == nil })

            let withTimes = try await instances { $0.options = ["sysAttrs"] }
            #expect(withTimes.compactMap { $0["value"]?.numberValue } == [30, 35, 41])
            var stored: [Double: String] = [:]
            for instance in withTimes {
                let modified = try #require(instance["modifiedAt"]?.stringValue)
                #expect(instance["createdAt"]?.stringValue == modified)
                let time = try #require(Timestamp.parse(modified))
                #expect(time >= start.addingTimeInterval(-0.001) && time <= end)
                stored[try #require(instance["value"]?.numberValue)] = modified
            }
            let t30 = try #require(stored[30]), t41 = try #require(stored[41]), t35 = try #require(stored[35])
            #expect(t30 < t41 && t41 < t35)

            let byStorage = try await instances { $0.timeproperty = "modifiedAt"; $0.options = ["sysAttrs"] }
            #expect(byStorage.compactMap { $0["value"]?.numberValue } == [30, 41, 35])
            #expect(byStorage.compactMap { $0["modifiedAt"]?.stringValue } == [t30, t41, t35])
            #expect(try await instances { $0.timeproperty = "modifiedAt" }.allSatisfy { $0["modifiedAt"] == nil })
            let before = try await instances { $0.timeproperty = "modifiedAt"; $0.timerel = "before"; $0.timeAt = t35 }
            #expect(before.compactMap { $0["value"]?.numberValue } == [30, 41])

            let valuesPlan = try plan(s) { $0.selection.attrs = "pm25"; $0.timeproperty = "modifiedAt"; $0.options = ["temporalValues"] }
            let pairs = try await s.temporal.retrieve(id, plan: valuesPlan, context: core, tenant: .default).entity["pm25"]?["values"]?.arrayValue ?? []
            #expect(pairs.compactMap { $0.arrayValue?.first?.numberValue } == [30, 41, 35])
            #expect(pairs.compactMap { $0.arrayValue?.last?.stringValue } == [t30, t41, t35])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func seriesTakeTheEntitysNewTypes(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            let id = try await s.entities.create(Self.station(1, pm25: 30, at: 1), context: core, tenant: .default)
            var replaced = try #require(Self.station(1, pm25: 31, at: 2).objectValue)
            replaced["type"] = ["AirQualityObserved", "WeatherObserved"]
            try await s.entities.replace(id, .object(replaced), context: core, tenant: .default)
            let chosen = try await s.history.entities(try plan(s) { $0.selection.type = "WeatherObserved" }.selection, tenant: .default)
            #expect(chosen.map(\.id) == [id])
            let vocabulary = "https://uri.etsi.org/ngsi-ld/default-context/"
            #expect(Set(chosen.first?.types ?? []) == [vocabulary + "AirQualityObserved", vocabulary + "WeatherObserved"])
            // The series is the same one: its instances from before the new type are still there, in order.
            #expect(try await values(s, id) { _ in } == [30, 31])
            try await s.entities.partialUpdate(id, attribute: "pm25", ["value": 32, "observedAt": "2026-11-25T03:00:00Z"], context: core, tenant: .default)
            #expect(try await values(s, id) { $0.lastN = "2" } == [31, 32])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func longHistoriesAreCutAndSaySo(_ kind: DialectKind) async throws {
        try await withServices(kind, instanceLimit: 3) { s in
            let readings: JSON = .array((0..<10).map { h in ["type": "Property", "value": .double(Double(h)), "observedAt": .string(String(format: "2026-11-24T%02d:00:00Z", h))] })
            let (id, created) = try await s.temporal.create(["id": "urn:ngsi-ld:AirQualityObserved:9", "type": "AirQualityObserved", "pm25": readings], context: core, tenant: .default)
            #expect(created)
            let (entity, cut) = try await s.temporal.retrieve(id, plan: try plan(s) { _ in }, context: core, tenant: .default)
            #expect(entity["pm25"]?.arrayValue?.compactMap { $0["value"]?.numberValue } == [0, 1, 2])
            #expect(cut.map { Timestamp.string($0.lowerBound) } == "2026-11-24T00:00:00.000Z")
            #expect(cut.map { Timestamp.string($0.upperBound) } == "2026-11-24T02:00:00.000Z")
            // The next page starts after the last one returned.
            #expect(try await values(s, id) { $0.timerel = "after"; $0.timeAt = "2026-11-24T02:00:00Z" } == [3, 4, 5])
            // lastN up to the limit is not a cut.
            #expect(try await s.temporal.retrieve(id, plan: try plan(s) { $0.lastN = "3" }, context: core, tenant: .default).cut == nil)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func aggregatesOfADayOfMinuteReadings(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            // A day of one-minute temperatures: 20 °C ± 5 over the day, and a step every ten minutes.
            let start = Timestamp.parse("2026-11-20T00:00:00Z")!
            let readings = (0..<1440).map { m -> Double in (20 + 5 * sin(Double(m) / 1440 * 2 * .pi) + Double(m % 10) / 10 * 10).rounded() / 10 }
            let instances: [JSON] = readings.enumerated().map { m, v in
                ["type": "Property", "value": .double(v), "observedAt": .string(Timestamp.string(start.addingTimeInterval(Double(m) * 60)))]
            }
            let firstHour = JSON.array(Array(instances[0..<60]))
            _ = try await s.temporal.create(["id": "urn:ngsi-ld:WeatherObserved:futian", "type": "WeatherObserved", "temperature": firstHour], context: core, tenant: .default)
            for chunk in stride(from: 60, to: 1440, by: 500) {
                try await s.temporal.append("urn:ngsi-ld:WeatherObserved:futian", ["temperature": .array(Array(instances[chunk..<min(chunk + 500, 1440)]))], context: core, tenant: .default)
            }
            let aggregatePlan = try plan(s) {
                $0.options = ["aggregatedValues"]
                $0.aggrMethods = "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"
                $0.aggrPeriodDuration = "PT1H"
                $0.timerel = "between"
                $0.timeAt = "2026-11-20T00:00:00Z"
                $0.endTimeAt = "2026-11-21T00:00:00Z"
            }
            guard case .aggregated(let aggregation) = aggregatePlan.form else { Issue.record("not an aggregation"); return }
            let series = try await s.history.aggregate(["urn:ngsi-ld:WeatherObserved:futian"], tenant: .default, query: aggregatePlan.query, aggregation: aggregation)
            let buckets = try #require(series.first { $0.name == Self.temperature }?.buckets)
            #expect(buckets.count == 24)
            for (hour, bucket) in buckets.enumerated() {
                let xs = Array(readings[hour * 60..<(hour + 1) * 60])
                let mean = xs.reduce(0, +) / 60
                let stddev = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 60).squareRoot()
                let sumsq: Double = xs.map { $0 * $0 }.reduce(0, +)
                let sum: Double = xs.reduce(0, +)
                #expect(bucket.start == start.addingTimeInterval(Double(hour) * 3600))
                #expect(bucket.values[.totalCount] == 60)
                #expect(bucket.values[.distinctCount] == .integer(Int64(Set(xs).count)))
                #expect(abs((bucket.values[.sum]?.numberValue ?? 0) - sum) < 1e-6)
                #expect(abs((bucket.values[.avg]?.numberValue ?? 0) - mean) < 1e-9)
                #expect(bucket.values[.min]?.numberValue == xs.min())
                #expect(bucket.values[.max]?.numberValue == xs.max())
                #expect(abs((bucket.values[.stddev]?.numberValue ?? 0) - stddev) < 1e-6)
                let storedSumsq = bucket.values[.sumsq]?.numberValue ?? 0
                #expect(abs(storedSumsq - sumsq) < 1e-6)
            }
            // A period so short that a day has millions of them is refused, not computed.
            await #expect {
                _ = try await s.history.aggregate(
                    ["urn:ngsi-ld:WeatherObserved:futian"], tenant: .default, query: TemporalQuery(),
                    aggregation: AggregationQuery(methods: [.avg], period: 1_000))
            } throws: { ($0 as? NGSIError)?.kind == .tooManyResults }
            // Without a period: one value for the whole range, from the first reading to the last.
            let whole = try await s.history.aggregate(
                ["urn:ngsi-ld:WeatherObserved:futian"], tenant: .default, query: TemporalQuery(),
                aggregation: AggregationQuery(methods: [.totalCount, .max], period: nil))
            let only = try #require(whole.first { $0.name == Self.temperature }?.buckets)
            #expect(only.count == 1)
            #expect(only.first?.values[.totalCount] == 1440)
            #expect(only.first?.values[.max]?.numberValue == readings.max())
            #expect(only.first?.start == start)
            #expect(only.first?.end == start.addingTimeInterval(1439 * 60))
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func directHistoryWrites(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            let body: JSON = ["id": "urn:ngsi-ld:WaterQualityObserved:sz", "type": "WaterQualityObserved",
                              "pm25": [["type": "Property", "value": 1, "observedAt": "2026-11-24T00:00:00Z"], ["type": "Property", "value": 2, "observedAt": "2026-11-24T01:00:00Z"]],
                              "temperature": ["type": "Property", "value": 18, "observedAt": "2026-11-24T00:00:00Z"]]
            let (id, created) = try await s.temporal.create(body, context: core, tenant: .default)
            #expect(created)
            #expect(try await s.temporal.create(body, context: core, tenant: .default).created == false)
            #expect(try await values(s, id) { _ in } == [1, 1, 2, 2])
            await #expect { try await s.temporal.append("urn:ngsi-ld:Nothing:1", ["pm25": ["value": 1]], context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .resourceNotFound
            }
            await #expect { _ = try await s.temporal.create(["id": "urn:ngsi-ld:X:1", "type": "X", "pm25": [["value": 1, "observedAt": "yesterday"]]], context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .badRequestData
            }

            let first = try await s.history.history(of: [id], tenant: .default, query: TemporalQuery())[0].instances[0]
            let instanceID = try #require(first["instanceId"]?.stringValue)
            try await s.temporal.modifyInstance(id, attribute: "pm25", instanceId: instanceID, ["value": 9], context: core, tenant: .default)
            #expect(try await values(s, id) { _ in }.first == 9)
            try await s.temporal.deleteInstance(id, attribute: "pm25", instanceId: instanceID, context: core, tenant: .default)
            #expect(try await values(s, id) { _ in } == [1, 2, 2])
            await #expect { try await s.temporal.deleteInstance(id, attribute: "pm25", instanceId: instanceID, context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .resourceNotFound
            }
            try await s.temporal.deleteAttribute(id, attribute: "pm25", datasetId: nil, deleteAll: false, context: core, tenant: .default)
            #expect(try await values(s, id) { _ in } == [])
            try await s.temporal.delete(id, tenant: .default)
            await #expect { try await s.temporal.delete(id, tenant: .default) } throws: { ($0 as? NGSIError)?.kind == .resourceNotFound }
        }
    }

    /// `q` in a temporal query is matched against the history within the time range asked for, not only the
    /// current state: a station whose PM2.5 was high at 02:00 but is low now is found for the morning, and
    /// not for a range after its high reading.
    @Test(arguments: TestDatabases.kinds)
    func qMatchesTheHistoryInTheTimeRange(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            let id = try await s.entities.create(Self.station(1, pm25: 12, at: 1), context: core, tenant: .default)
            _ = try await s.entities.create(Self.station(2, pm25: 20, at: 1), context: core, tenant: .default)
            for (value, hour, name) in [(75.0, 2, "莲花山监测站"), (18.0, 3, "莲花山公园站")] {
                _ = try await s.entities.update(id, [
                    "pm25": ["type": "Property", "value": .double(value), "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))],
                    "name": ["type": "Property", "value": .string(name), "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))],
                ], context: core, tenant: .default)
            }
            func chosen(_ q: String, _ configure: (inout TemporalService.Parameters) -> Void = { _ in }) async throws -> [String] {
                let plan = try plan(s) { $0.selection.type = "AirQualityObserved"; $0.selection.q = q; configure(&$0) }
                return try await s.history.entities(plan.selection, tenant: .default).map(\.id)
            }
            let other = "urn:ngsi-ld:AirQualityObserved:2"
            // Now 18: only the history has 75.
            #expect(try await chosen("pm25>50") == [id])
            #expect(try await chosen("pm25>50") { $0.timerel = "before"; $0.timeAt = "2026-11-25T02:30:00Z" } == [id])
            #expect(try await chosen("pm25>50") { $0.timerel = "after"; $0.timeAt = "2026-11-25T02:30:00Z" } == [])
            #expect(try await chosen("pm25==10..15") == [id])
            #expect(try await chosen("pm25<15") { $0.timerel = "after"; $0.timeAt = "2026-11-25T01:30:00Z" } == [])
            // Texts (also Chinese), OR, existence and metadata.
            #expect(try await chosen(#"name=="莲花山监测站""#) { $0.timerel = "between"; $0.timeAt = "2026-11-25T01:30:00Z"; $0.endTimeAt = "2026-11-25T02:30:00Z" } == [id])
            #expect(try await chosen(#"name~="公园""#) == [id])
            #expect(try await chosen("pm25>70|pm25==20") == [id, other])
            #expect(try await chosen("pm25") { $0.timerel = "after"; $0.timeAt = "2026-11-25T02:30:00Z" } == [id])
            #expect(try await chosen("pm25.observedAt>=2026-11-25T03:00:00Z") == [id])
            #expect(try await chosen("pm25.observedAt==2026-11-25T01:00:00Z") == [id, other])
        }
    }

    /// A geo-query in a temporal query is matched against the positions kept in history within the time
    /// range: a bus inside the district at 01:00 and outside it since 03:00 is found for the night, not for
    /// the morning, and near where it went only for the morning.
    @Test(arguments: TestDatabases.kinds)
    func geoQueriesMatchTheHistoryInTheTimeRange(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            func location(_ longitude: Double, _ latitude: Double, hour: Int) -> JSON {
                ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [.double(longitude), .double(latitude)]],
                 "observedAt": .string(String(format: "2026-11-25T%02d:00:00Z", hour))]
            }
            func bus(_ n: Int, _ longitude: Double, _ latitude: Double) -> JSON {
                ["id": .string("urn:ngsi-ld:Bus:\(n)"), "type": "Bus", "location": location(longitude, latitude, hour: 1),
                 "speed": ["type": "Property", "value": 30, "observedAt": "2026-11-25T01:00:00Z"]]
            }
            let id = try await s.entities.create(bus(1, 114.05, 22.54), context: core, tenant: .default)
            _ = try await s.entities.create(bus(2, 113.93, 22.52), context: core, tenant: .default)
            _ = try await s.entities.update(id, ["location": location(113.90, 22.50, hour: 3)], context: core, tenant: .default)
            func chosen(_ georel: String, _ geometry: String, _ coordinates: String, _ timerel: String? = nil) async throws -> [String] {
                let plan = try plan(s) {
                    $0.selection.type = "Bus"
                    $0.selection.georel = georel
                    $0.selection.geometry = geometry
                    $0.selection.coordinates = coordinates
                    if let timerel { $0.timerel = timerel; $0.timeAt = "2026-11-25T02:00:00Z" }
                }
                return try await s.history.entities(plan.selection, tenant: .default).map(\.id)
            }
            let district = "[[[114.0,22.5],[114.1,22.5],[114.1,22.6],[114.0,22.6],[114.0,22.5]]]"
            #expect(try await chosen("within", "Polygon", district) == [id])
            #expect(try await chosen("within", "Polygon", district, "before") == [id])
            #expect(try await chosen("within", "Polygon", district, "after") == [])
            #expect(try await chosen("near;maxDistance==1000", "Point", "[113.9,22.5]", "after") == [id])
            #expect(try await chosen("near;maxDistance==1000", "Point", "[113.9,22.5]", "before") == [])
            #expect(try await chosen("intersects", "Polygon", "[[[113.92,22.51],[113.94,22.51],[113.94,22.53],[113.92,22.53],[113.92,22.51]]]") == ["urn:ngsi-ld:Bus:2"])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func deletionSelectionAndRetention(_ kind: DialectKind) async throws {
        try await withServices(kind) { s in
            for n in 1...3 { _ = try await s.entities.create(Self.station(n, pm25: Double(n * 10), at: n), context: core, tenant: .default) }
            // Chosen by type, and by q.
            var chosen = try await s.history.entities(try plan(s) { $0.selection.type = "AirQualityObserved" }.selection, tenant: .default)
            #expect(chosen.map(\.id) == (1...3).map { "urn:ngsi-ld:AirQualityObserved:\($0)" })
            chosen = try await s.history.entities(try plan(s) { $0.selection.type = "AirQualityObserved"; $0.selection.q = "pm25>15" }.selection, tenant: .default)
            #expect(chosen.map(\.id) == ["urn:ngsi-ld:AirQualityObserved:2", "urn:ngsi-ld:AirQualityObserved:3"])
            // Deleting an entity deletes its history.
            try await s.entities.delete("urn:ngsi-ld:AirQualityObserved:1", tenant: .default)
            #expect(try await s.history.hasHistory("urn:ngsi-ld:AirQualityObserved:1", tenant: .default) == false)
            // Retention: instances observed before the cut-off go, later ones stay.
            let deleted = try await s.history.deleteObserved(before: Timestamp.parse("2026-11-25T02:30:00Z")!)
            #expect(deleted == 1)
            #expect(try await values(s, "urn:ngsi-ld:AirQualityObserved:2") { _ in } == [])
            #expect(try await values(s, "urn:ngsi-ld:AirQualityObserved:3") { _ in } == [30])
        }
        try await withServices(kind, keepHistory: true) { s in
            let id = try await s.entities.create(Self.station(4, pm25: 44, at: 4), context: core, tenant: .default)
            try await s.entities.delete(id, tenant: .default)
            #expect(try await values(s, id) { _ in } == [44])
        }
    }

    @Test func aggregationPeriods() throws {
        #expect(try AggregationQuery.period("PT1H") == 3_600_000_000)
        #expect(try AggregationQuery.period("P1DT12H") == 129_600_000_000)
        #expect(try AggregationQuery.period("PT0.5S") == 500_000)
        #expect(try AggregationQuery.period("P1W") == 604_800_000_000)
        for bad in ["1H", "P", "PT", "P1M", "P1Y", "PT1D", "P1H", "PTH", "PT-1H", "P1DT"] {
            #expect(throws: NGSIError.self, "\(bad)") { try AggregationQuery.period(bad) }
        }
    }
}
