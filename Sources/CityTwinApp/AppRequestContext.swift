import CityKit
import Hummingbird
import Twin

/// The request context of every route: the core storage and who is calling.
public struct AppRequestContext: TwinRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal = .anonymous

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { 64 << 20 }
}
