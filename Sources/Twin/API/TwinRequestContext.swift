import CityKit
import Hummingbird

/// A request context that knows who is calling; the app's context conforms.
public protocol TwinRequestContext: RequestContext {
    var principal: Principal { get }
}
