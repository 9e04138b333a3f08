import CityKit
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Storage
import Synchronization
import Testing
import Twin

/// Remote @contexts are fetched over a real socket once, kept in the database, and 503 when unreachable.
@Suite struct RemoteContextTests {
    static let document = #"{"@context": {"sdm": "https://smartdatamodels.org/", "pm25": "sdm:pm25", "name": "https://schema.org/name"}}"#

    /// Serves the context document on a free loopback port while `body` runs; counts the requests.
    func withContextServer(_ body: @Sendable (String, @Sendable () -> Int) async throws -> Void) async throws {
        let hits = Atomic<Int>(0)
        let router = Router()
        router.get("ctx.jsonld") { _, _ in
            hits.add(1, ordering: .relaxed)
            return Response(status: .ok, headers: [.contentType: "application/ld+json"], body: .init(byteBuffer: ByteBuffer(string: Self.document)))
        }
        let port = Mutex<Int?>(nil)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        try await withThrowingTaskGroup(of: Void.self) { group in
            let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test.context-server")))
            group.addTask { try await serviceGroup.run() }
            while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            try await body("http://127.0.0.1:\(port.withLock { $0 }!)/ctx.jsonld", { hits.load(ordering: .relaxed) })
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func fetchedOnceAndKept(_ kind: DialectKind) async throws {
        try await withContextServer { url, hits in
            try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
                let store = SQLContextStore(database: database)
                let resolver = ContextResolver(store: store, fetcher: HTTPContextFetcher(), hostedBase: "http://127.0.0.1/", logger: Logger(label: "test"))
                let context = try await resolver.resolve(.string(url))
                #expect(context.expand("pm25") == "https://smartdatamodels.org/pm25")
                #expect(context.expand("location") == "https://uri.etsi.org/ngsi-ld/location")
                _ = try await resolver.resolve(.array([.string(url), ["extra": "https://example.org/extra"]]))
                #expect(hits() == 1)
                // A new resolver (a restarted server) reads it from the database, not the network.
                let restarted = ContextResolver(store: store, fetcher: HTTPContextFetcher(), hostedBase: "http://127.0.0.1/", logger: Logger(label: "test"))
                #expect(try await restarted.resolve(.string(url)).expand("name") == "https://schema.org/name")
                #expect(hits() == 1)
                // The remote one is cached; the inline array that used it is kept as implicitly created.
                #expect(Set(try await store.list().map(\.kind)) == [.cached, .implicitlyCreated])
            }
        }
    }

    @Test func unreachableContextIs503() async throws {
        try await TestDatabases.with(.sqlite, migrations: TwinMigrations.all) { database, _ in
            let resolver = ContextResolver(store: SQLContextStore(database: database), fetcher: HTTPContextFetcher(timeout: .seconds(2)),
                                           hostedBase: "http://127.0.0.1/", logger: Logger(label: "test"))
            await #expect { try await resolver.resolve(.string("http://127.0.0.1:9/nothing.jsonld")) } throws: {
                ($0 as? NGSIError)?.kind == .ldContextNotAvailable
            }
            await #expect { try await resolver.resolve(.string("ftp://example.org/ctx")) } throws: { ($0 as? NGSIError)?.kind == .badRequestData }
            await #expect { try await resolver.resolve(.integer(5)) } throws: { ($0 as? NGSIError)?.kind == .badRequestData }
        }
    }
}
