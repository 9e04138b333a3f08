import CityKit
import Foundation

/// The NGSI-LD temporal API over a `HistoryStore`: choosing entities, reading their history (instances,
/// `temporalValues`, aggregations) and writing history directly.
public struct TemporalService: Sendable {
    public let history: any HistoryStore
    public let entities: EntityService
    /// The most instances of one attribute in one answer; more → 206 with `Content-Range`.
    public let instanceLimit: Int

    public init(history: any HistoryStore, entities: EntityService, instanceLimit: Int = 1000) {
        self.history = history
        self.entities = entities
        self.instanceLimit = instanceLimit
    }

    /// Query parameters as the caller wrote them.
    public struct Parameters: Sendable {
        public var selection = EntityService.QueryParameters()
        public var timerel: String?
        public var timeAt: String?
        public var endTimeAt: String?
        public var timeproperty: String?
        public var lastN: String?
        public var aggrMethods: String?
        public var aggrPeriodDuration: String?
        public var options: Set<String> = []

        public init() {}
    }

    /// What to answer and in which form.
    public enum Form: Sendable, Equatable {
        case normalized
        case temporalValues
        case aggregated(AggregationQuery)
    }

    public struct Plan: Sendable {
        public var selection: TemporalSelection
        public var query: TemporalQuery
        public var form: Form
        public var representation: Representation
    }

    public func plan(_ p: Parameters, context: LDContext, requireFilter: Bool = true) throws(NGSIError) -> Plan {
        let (entityQuery, chosen) = try entities.plan(p.selection, context: context, requireFilter: requireFilter)
        var representation = chosen
        // The entity selection has no options of its own: sysAttrs comes with the temporal request's.
        representation.sysAttrs = p.options.contains("sysAttrs")
        var selection = TemporalSelection()
        selection.ids = entityQuery.ids
        selection.idPattern = entityQuery.idPattern
        selection.types = entityQuery.types
        selection.attrs = entityQuery.attrs
        selection.limit = entityQuery.limit
        selection.offset = entityQuery.offset
        var query = TemporalQuery()
        query.instanceLimit = instanceLimit
        query.attrs = representation.pick
        query.timerel = try Self.timeRelation(p)
        if let property = p.timeproperty {
            guard let tp = TimeProperty(rawValue: property) else { throw .badData("timeproperty must be observedAt, createdAt or modifiedAt") }
            query.timeProperty = tp
        }
        if let lastN = p.lastN {
            guard let n = Int(lastN), n > 0 else { throw .badData("lastN must be a positive integer") }
            query.lastN = n
        }
        query.systemTimes = representation.sysAttrs || query.timeProperty != .observedAt
        var form = Form.normalized
        if p.options.contains("aggregatedValues") {
            var methods: [AggregationMethod] = AggregationMethod.allCases
            if let list = p.aggrMethods {
                methods = []
                for name in list.split(separator: ",") {
                    guard let m = AggregationMethod(rawValue: String(name)) else {
                        throw .badData("\(name) is not an aggregation method (\(AggregationMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    methods.append(m)
                }
            }
            form = .aggregated(AggregationQuery(methods: methods, period: try p.aggrPeriodDuration.map(AggregationQuery.period)))
        } else if p.options.contains("temporalValues") {
            form = .temporalValues
        }
        selection.q = entityQuery.q
        selection.geo = entityQuery.geo
        selection.window = query
        return Plan(selection: selection, query: query, form: form, representation: representation)
    }

    static func timeRelation(_ p: Parameters) throws(NGSIError) -> TimeRelation? {
        guard let rel = p.timerel else {
            if p.timeAt != nil || p.endTimeAt != nil { throw .badData("timeAt and endTimeAt need timerel") }
            return nil
        }
        guard let text = p.timeAt else { throw .badData("timerel needs timeAt") }
        guard let timeAt = Timestamp.parse(text) else { throw .badData("timeAt \(text) is not an ISO 8601 date-time") }
        switch rel {
        case "before": return .before(timeAt)
        case "after": return .after(timeAt)
        case "between":
            guard let endText = p.endTimeAt else { throw .badData("timerel=between needs endTimeAt") }
            guard let end = Timestamp.parse(endText) else { throw .badData("endTimeAt \(endText) is not an ISO 8601 date-time") }
            guard end > timeAt else { throw .badData("endTimeAt must be after timeAt") }
            return .between(timeAt, end)
        default: throw .badData("timerel must be before, after or between")
        }
    }

    /// The temporal representation of the chosen entities, and the time range of what was cut short
    /// (nil when nothing was).
    public func query(_ plan: Plan, context: LDContext, tenant: Tenant) async throws -> (entities: [JSON], cut: ClosedRange<Date>?) {
        try await entities.requireTenant(tenant)
        let chosen = try await history.entities(plan.selection, tenant: tenant)
        let rendered = try await render(chosen.map(\.id), types: Dictionary(chosen.map { ($0.id, $0.types) }, uniquingKeysWith: { a, _ in a }), plan: plan, context: context, tenant: tenant)
        return (rendered.entities, rendered.cut)
    }

    /// One entity's history, read in one pass: the series carry the entity's types.
    public func retrieve(_ id: String, plan: Plan, context: LDContext, tenant: Tenant) async throws -> (entity: JSON, cut: ClosedRange<Date>?) {
        try await entities.requireTenant(tenant)
        let rendered = try await render([id], types: [:], plan: plan, context: context, tenant: tenant)
        if rendered.withSeries.isEmpty {
            // No series of the attributes asked for: the entity may still have history of others.
            var selection = TemporalSelection()
            selection.ids = [id]
            selection.limit = 1
            guard let found = try await history.entities(selection, tenant: tenant).first else {
                throw NGSIError.notFound("entity \(id) has no history")
            }
            let writer = TemporalRepresentation(base: plan.representation, timeProperty: plan.query.timeProperty)
            return (.object(writer.head(id, types: found.types, context: context)), nil)
        }
        return (rendered.entities[0], rendered.cut)
    }

    /// Reads and renders the history of `ids`; an entity's types come from `types`, else from its series.
    /// Also tells which entities had series of the attributes asked for.
    func render(
        _ ids: [String], types: [String: [String]], plan: Plan, context: LDContext, tenant: Tenant
    ) async throws -> (entities: [JSON], cut: ClosedRange<Date>?, withSeries: Set<String>) {
        let writer = TemporalRepresentation(base: plan.representation, timeProperty: plan.query.timeProperty)
        switch plan.form {
        case .aggregated(let aggregation):
            let series = try await history.aggregate(ids, tenant: tenant, query: plan.query, aggregation: aggregation)
            let byEntity = Dictionary(grouping: series, by: \.entityID)
            let rendered = ids.map { id in
                writer.aggregated(id, types: types[id] ?? byEntity[id]?.first?.types ?? [], byEntity[id] ?? [], methods: aggregation.methods, context: context)
            }
            return (rendered, nil, Set(byEntity.keys))
        case .normalized, .temporalValues:
            let series = try await history.history(of: ids, tenant: tenant, query: plan.query)
            let byEntity = Dictionary(grouping: series, by: \.entityID)
            let rendered = ids.map { id in
                writer.instances(id, types: types[id] ?? byEntity[id]?.first?.types ?? [], byEntity[id] ?? [], values: plan.form == .temporalValues, context: context)
            }
            return (rendered, Self.cutRange(series, timeProperty: plan.query.timeProperty), Set(byEntity.keys))
        }
    }

    /// The span of the instances returned for the series that were cut short.
    static func cutRange(_ series: [SeriesHistory], timeProperty: TimeProperty) -> ClosedRange<Date>? {
        let member = timeProperty == .observedAt ? "observedAt" : "modifiedAt"
        let times = series.filter(\.truncated).flatMap { $0.instances.compactMap { $0[member]?.stringValue.flatMap(Timestamp.parse) } }
        guard let first = times.min(), let last = times.max() else { return nil }
        return first...last
    }

    // MARK: Writing history directly

    /// `POST /temporal/entities`: an entity whose attributes each hold an array of instances. Returns whether
    /// the entity had no history before (201) or had some (204).
    public func create(_ body: JSON, context: LDContext, tenant: Tenant) async throws -> (id: String, created: Bool) {
        let input = EntityInput(context: context, now: entities.clock.now())
        guard case .object(let object) = body else { throw NGSIError.badData("a temporal entity must be a JSON object") }
        let entity = try input.entity(.object(object.filter { EntityInput.entityMembers.contains($0.key) }))
        let attributes = try Self.instances(object, input: input)
        guard !attributes.isEmpty else { throw NGSIError.badData("a temporal entity needs at least one attribute with instances") }
        let created = try await history.append(entity.id, types: entity.types, attributes: attributes, tenant: tenant)
        return (entity.id, created)
    }

    /// `POST /temporal/entities/{id}/attrs`: more instances for an entity that has history.
    public func append(_ id: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try EntityService.checkID(id)
        guard case .object(let object) = body else { throw NGSIError.badData("the attributes must be a JSON object") }
        let input = EntityInput(context: context, now: entities.clock.now())
        let attributes = try Self.instances(object, input: input)
        guard !attributes.isEmpty else { throw NGSIError.badData("no attributes to add") }
        guard try await history.hasHistory(id, tenant: tenant) else { throw NGSIError.notFound("entity \(id) has no history") }
        _ = try await history.append(id, types: [], attributes: attributes, tenant: tenant)
    }

    /// Each attribute of a temporal body: one instance or an array of them (any number per datasetId).
    static func instances(_ object: [String: JSON], input: EntityInput) throws(NGSIError) -> [String: [[String: JSON]]] {
        var out: [String: [[String: JSON]]] = [:]
        for (name, value) in object where !EntityInput.entityMembers.contains(name) {
            let expanded = try input.attributeName(name)
            let items: [JSON]
            if case .array(let list) = value, list.allSatisfy({ $0.objectValue != nil }) { items = list } else { items = [value] }
            guard !items.isEmpty else { throw .badData("attribute \(name) has no instances") }
            var instances: [[String: JSON]] = []
            for item in items {
                // `attribute` checks observedAt too.
                var instance = try input.attribute(name, item, depth: 0)
                instance["instanceId"] = nil
                instances.append(instance)
            }
            out[expanded] = instances
        }
        return out
    }

    public func delete(_ id: String, tenant: Tenant) async throws {
        try EntityService.checkID(id)
        guard try await history.deleteHistory(of: id, tenant: tenant) else { throw NGSIError.notFound("entity \(id) has no history") }
    }

    public func deleteAttribute(_ id: String, attribute: String, datasetId: String?, deleteAll: Bool, context: LDContext, tenant: Tenant) async throws {
        try EntityService.checkID(id)
        let name = try EntityInput(context: context, now: Date()).attributeName(attribute)
        guard try await history.deleteHistory(of: id, attribute: name, datasetID: datasetId, allDatasets: deleteAll, tenant: tenant) else {
            throw NGSIError.notFound("entity \(id) has no history of \(attribute)")
        }
    }

    public func modifyInstance(_ id: String, attribute: String, instanceId: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try EntityService.checkID(id)
        let input = EntityInput(context: context, now: entities.clock.now())
        let name = try input.attributeName(attribute)
        guard case .object(let fragment) = body else { throw NGSIError.badData("the instance change must be a JSON object") }
        // Checked as an attribute (with a type inferred if absent), then merged member by member.
        let checked = try input.attribute(attribute, .object(fragment.merging(["type": fragment["type"] ?? "Property"]) { a, _ in a }), depth: 0)
        var changes = checked.filter { fragment[$0.key] != nil || fragment[input.context.compact($0.key)] != nil }
        changes["createdAt"] = nil
        changes["modifiedAt"] = nil
        guard try await history.modifyInstance(id, attribute: name, instanceID: instanceId, changes: changes, tenant: tenant) else {
            throw NGSIError.notFound("no instance \(instanceId) of \(attribute) of \(id)")
        }
    }

    public func deleteInstance(_ id: String, attribute: String, instanceId: String, context: LDContext, tenant: Tenant) async throws {
        try EntityService.checkID(id)
        let name = try EntityInput(context: context, now: Date()).attributeName(attribute)
        guard try await history.deleteInstance(id, attribute: name, instanceID: instanceId, tenant: tenant) else {
            throw NGSIError.notFound("no instance \(instanceId) of \(attribute) of \(id)")
        }
    }
}
