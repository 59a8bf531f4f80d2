import NN

#if canImport(Glibc)
    import Glibc
#endif

/// A filled primitive that scene objects are drawn from.
enum Shape: Sendable {
    case disc(x: Float, y: Float, radius: Float)
    /// A segment with round ends: the points within `radius` of it.
    case capsule(x0: Float, y0: Float, x1: Float, y1: Float, radius: Float)
    /// A convex or concave polygon (even-odd rule).
    case polygon([(Float, Float)])

    /// (x1, y1, x2, y2) of the shape.
    var bounds: (Float, Float, Float, Float) {
        switch self {
        case .disc(let x, let y, let r): (x - r, y - r, x + r, y + r)
        case .capsule(let x0, let y0, let x1, let y1, let r): (min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
        case .polygon(let points):
            (points.map(\.0).min()!, points.map(\.1).min()!, points.map(\.0).max()!, points.map(\.1).max()!)
        }
    }

    func contains(_ px: Float, _ py: Float) -> Bool {
        switch self {
        case .disc(let x, let y, let r):
            return (px - x) * (px - x) + (py - y) * (py - y) <= r * r
        case .capsule(let x0, let y0, let x1, let y1, let r):
            let dx = x1 - x0, dy = y1 - y0
            let length = dx * dx + dy * dy
            let t = length > 0 ? min(max(((px - x0) * dx + (py - y0) * dy) / length, 0), 1) : 0
            let cx = x0 + t * dx - px, cy = y0 + t * dy - py
            return cx * cx + cy * cy <= r * r
        case .polygon(let points):
            var inside = false
            var j = points.count - 1
            for i in points.indices {
                let (xi, yi) = points[i], (xj, yj) = points[j]
                if (yi > py) != (yj > py), px < (xj - xi) * (py - yi) / (yj - yi) + xi { inside.toggle() }
                j = i
            }
            return inside
        }
    }
}

/// The object classes of the synthetic benchmark; the raw value is the COCO category id and the detector label.
public enum SceneClass: Int, Sendable, CaseIterable {
    /// An articulated figure: head, torso, two arms and two legs in a random pose.
    case person = 1
    /// A body, a cabin and two wheels.
    case car = 2
    /// A board (triangle, diamond or square) on a pole.
    case sign = 3

    public var name: String {
        switch self {
        case .person: "person"
        case .car: "car"
        case .sign: "sign"
        }
    }
}

/// One object of a scene: colored shapes, drawn in order.
struct SceneObject: Sendable {
    var sceneClass: SceneClass
    var parts: [(shape: Shape, color: (Float, Float, Float))]

    /// The full extent (x1, y1, x2, y2), occluded parts included.
    var extent: (Float, Float, Float, Float) {
        parts.map(\.shape.bounds).reduce((Float.infinity, Float.infinity, -Float.infinity, -Float.infinity)) {
            (min($0.0, $1.0), min($0.1, $1.1), max($0.2, $1.2), max($0.3, $1.3))
        }
    }

    static func color(_ random: inout RandomNumbers) -> (Float, Float, Float) { (random.unit(), random.unit(), random.unit()) }

    /// A person of height `height` whose feet stand at (x, bottom).
    static func person(x: Float, bottom: Float, height h: Float, _ random: inout RandomNumbers) -> SceneObject {
        let skin = (0.55 + 0.4 * random.unit(), 0.4 + 0.3 * random.unit(), 0.3 + 0.3 * random.unit())
        let shirt = color(&random), trousers = color(&random)
        let hip = (x + h * 0.04 * (random.unit() - 0.5), bottom - 0.47 * h)
        let neck = (hip.0 + h * 0.06 * (random.unit() - 0.5), bottom - 0.8 * h)
        func limb(from start: (Float, Float), length: Float, angle: Float, radius: Float, color: (Float, Float, Float)) -> (
            Shape, (Float, Float, Float)
        ) {
            (
                .capsule(x0: start.0, y0: start.1, x1: start.0 + length * sinf(angle), y1: start.1 + length * cosf(angle), radius: radius),
                color
            )
        }
        var parts: [(Shape, (Float, Float, Float))] = []
        // Legs first (behind the torso), then the torso, the arms and the head.
        for side: Float in [-1, 1] {
            parts.append(limb(from: hip, length: 0.44 * h, angle: side * (0.05 + 0.35 * random.unit()), radius: 0.05 * h, color: trousers))
        }
        parts.append((.capsule(x0: hip.0, y0: hip.1, x1: neck.0, y1: neck.1 + 0.03 * h, radius: 0.11 * h), shirt))
        for side: Float in [-1, 1] {
            let shoulder = (neck.0 + side * 0.09 * h, neck.1 + 0.05 * h)
            parts.append(limb(from: shoulder, length: 0.34 * h, angle: side * (0.1 + 2.2 * random.unit()), radius: 0.035 * h, color: shirt))
        }
        parts.append((.disc(x: neck.0, y: neck.1 - 0.09 * h, radius: 0.09 * h), skin))
        return SceneObject(sceneClass: .person, parts: parts)
    }

    /// A car of height `height` standing at (x, bottom), facing left or right.
    static func car(x: Float, bottom: Float, height h: Float, _ random: inout RandomNumbers) -> SceneObject {
        let w = h * (1.8 + 0.6 * random.unit())
        let paint = color(&random), glass: (Float, Float, Float) = (0.6 + 0.3 * random.unit(), 0.8, 0.95),
            tyre: (Float, Float, Float) = (0.08, 0.08, 0.08)
        let wheel = 0.2 * h
        let bodyTop = bottom - wheel - 0.45 * h
        let cabinFront = x + (random.unit() < 0.5 ? -1 : 1) * 0.05 * w
        let body = Shape.polygon([
            (x - w / 2, bottom - wheel), (x + w / 2, bottom - wheel), (x + w / 2, bodyTop + 0.1 * h), (x - w / 2, bodyTop + 0.1 * h),
        ])
        let cabin = Shape.polygon([
            (cabinFront - 0.3 * w, bodyTop + 0.1 * h), (cabinFront + 0.3 * w, bodyTop + 0.1 * h), (cabinFront + 0.2 * w, bottom - h),
            (cabinFront - 0.22 * w, bottom - h),
        ])
        return SceneObject(
            sceneClass: .car,
            parts: [
                (cabin, glass), (body, paint), (.disc(x: x - 0.3 * w, y: bottom - wheel, radius: wheel), tyre),
                (.disc(x: x + 0.3 * w, y: bottom - wheel, radius: wheel), tyre),
            ])
    }

    /// A sign of height `height` standing at (x, bottom).
    static func sign(x: Float, bottom: Float, height h: Float, _ random: inout RandomNumbers) -> SceneObject {
        let r = 0.22 * h
        let center = (x, bottom - h + r)
        let board: Shape
        switch Int(random.next() % 3) {
        case 0: board = .polygon([(center.0, center.1 - r), (center.0 + r, center.1 + 0.8 * r), (center.0 - r, center.1 + 0.8 * r)])
        case 1: board = .polygon([(center.0, center.1 - r), (center.0 + r, center.1), (center.0, center.1 + r), (center.0 - r, center.1)])
        default:
            board = .polygon([
                (center.0 - r, center.1 - r), (center.0 + r, center.1 - r), (center.0 + r, center.1 + r), (center.0 - r, center.1 + r),
            ])
        }
        let pole: (Float, Float, Float) = (0.5, 0.5, 0.55)
        return SceneObject(
            sceneClass: .sign, parts: [(.capsule(x0: x, y0: bottom, x1: x, y1: center.1, radius: 0.03 * h), pole), (board, color(&random))])
    }
}
