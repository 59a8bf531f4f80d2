import NN
public import Vision

#if canImport(Glibc)
    import Glibc
#endif

/// One generated image with its objects.
public struct SyntheticScene: Sendable {
    public struct Object: Sendable {
        public var sceneClass: SceneClass
        /// The full extent (x1, y1, x2, y2), clipped to the image, occluded parts included (as CrowdHuman's boxes).
        public var box: [Float]
        /// Column-major run lengths of the visible part, starting with a run of zeros (COCO's uncompressed RLE).
        public var visibleCounts: [Int]
        public var visiblePixels: Int
        /// The visible share of the object's own drawn pixels.
        public var visibility: Float
        /// Hidden beyond the threshold: an ignore region, not an object to find.
        public var ignored: Bool
    }

    public var image: RGBImage
    public var objects: [Object]
    /// A crowd scene (a row of overlapping people) rather than a sparse one.
    public var isCrowd: Bool
}

/// Deterministic scenes of people, cars and signs on textured backgrounds: "crowd" scenes (a row of overlapping
/// people, drawn in depth order) and "sparse" ones (a few objects apart).
public struct SceneGenerator: Sendable {
    public var width: Int
    public var height: Int
    /// The share of crowd scenes.
    public var crowdFraction: Double
    /// Objects whose visible share is below this are ignore regions.
    public var ignoreBelowVisibility: Float
    /// Real images whose crops serve as backgrounds (with procedural ones).
    public var textures: [RGBImage]

    public init(
        width: Int = 320, height: Int = 320, crowdFraction: Double = 0.5, ignoreBelowVisibility: Float = 0.25, textures: [RGBImage] = []
    ) {
        self.width = width
        self.height = height
        self.crowdFraction = crowdFraction
        self.ignoreBelowVisibility = ignoreBelowVisibility
        self.textures = textures
    }

    /// Scene `index` of the stream seeded by `seed`; the same arguments give the same scene.
    public func scene(index: Int, seed: UInt64) -> SyntheticScene {
        var random = RandomNumbers(seed: seed &* 1_000_003 &+ UInt64(index))
        let isCrowd = Double(random.unit()) < crowdFraction
        var canvas = background(&random)
        let objects = isCrowd ? crowdObjects(&random) : sparseObjects(&random)
        // Farther objects (feet higher in the image) first, so that nearer ones occlude them.
        let ordered = objects.sorted { $0.extent.3 < $1.extent.3 }
        var owner = [Int32](repeating: -1, count: width * height)
        var drawn = [Int](repeating: 0, count: ordered.count)
        for (index, object) in ordered.enumerated() {
            for (shape, color) in object.parts {
                let (bx1, by1, bx2, by2) = shape.bounds
                let x0 = max(Int(bx1.rounded(.down)), 0), x1 = min(Int(bx2.rounded(.up)), width - 1)
                let y0 = max(Int(by1.rounded(.down)), 0), y1 = min(Int(by2.rounded(.up)), height - 1)
                guard x0 <= x1 && y0 <= y1 else { continue }
                let shade = 0.85 + 0.15 * random.unit()
                for y in y0...y1 {
                    for x in x0...x1 where shape.contains(Float(x) + 0.5, Float(y) + 0.5) {
                        let p = y * width + x
                        if owner[p] != Int32(index) { drawn[index] += 1 }
                        owner[p] = Int32(index)
                        let light = shade * (0.9 + 0.1 * Float(y - y0) / Float(max(y1 - y0, 1)))
                        canvas[3 * p] = color.0 * light
                        canvas[3 * p + 1] = color.1 * light
                        canvas[3 * p + 2] = color.2 * light
                    }
                }
            }
        }
        var results: [SyntheticScene.Object] = []
        for (index, object) in ordered.enumerated() {
            let (x1, y1, x2, y2) = object.extent
            let box = [max(x1, 0), max(y1, 0), min(x2, Float(width)), min(y2, Float(height))]
            guard box[2] - box[0] >= 2 && box[3] - box[1] >= 2 else { continue }
            var counts: [Int] = []
            var run = 0, value = false, visible = 0
            for x in 0..<width {
                for y in 0..<height {
                    let mine = owner[y * width + x] == Int32(index)
                    if mine { visible += 1 }
                    if mine != value {
                        counts.append(run)
                        (run, value) = (0, mine)
                    }
                    run += 1
                }
            }
            counts.append(run)
            let visibility = drawn[index] > 0 ? Float(visible) / Float(drawn[index]) : 0
            results.append(
                .init(
                    sceneClass: object.sceneClass, box: box, visibleCounts: counts, visiblePixels: visible, visibility: visibility,
                    ignored: visibility < ignoreBelowVisibility || visible == 0))
        }
        // Sensor noise, then 8 bits.
        var pixels = [UInt8](repeating: 0, count: 3 * width * height)
        for i in pixels.indices { pixels[i] = UInt8(max(0, min(255, (canvas[i] + 0.03 * (random.unit() - 0.5)) * 255))) }
        return SyntheticScene(image: RGBImage(width: width, height: height, pixels: pixels), objects: results, isCrowd: isCrowd)
    }

    /// A row of 3 to 7 overlapping people of similar size, and up to two other objects.
    func crowdObjects(_ random: inout RandomNumbers) -> [SceneObject] {
        let size = Float(height) * (0.3 + 0.45 * random.unit())
        let count = 3 + Int(random.next() % 5)
        let spacing = size * (0.14 + 0.16 * random.unit())
        let start = Float(width) / 2 - spacing * Float(count - 1) / 2 + Float(width) * 0.2 * (random.unit() - 0.5)
        let ground = Float(height) * (0.75 + 0.2 * random.unit())
        var objects = (0..<count).map { k in
            SceneObject.person(
                x: start + Float(k) * spacing + 0.1 * spacing * (random.unit() - 0.5), bottom: ground + size * 0.12 * (random.unit() - 0.5),
                height: size * (0.9 + 0.2 * random.unit()), &random)
        }
        for _ in 0..<Int(random.next() % 3) { objects.append(randomObject(&random, classes: [.car, .sign])) }
        return objects
    }

    /// One to five objects of any class, placed so that their boxes barely overlap.
    func sparseObjects(_ random: inout RandomNumbers) -> [SceneObject] {
        var objects: [SceneObject] = []
        let wanted = 1 + Int(random.next() % 5)
        var attempts = 0
        while objects.count < wanted && attempts < 60 {
            attempts += 1
            let candidate = randomObject(&random, classes: SceneClass.allCases)
            let e = candidate.extent
            let clear = objects.allSatisfy { other in
                let o = other.extent
                let w = max(0, min(e.2, o.2) - max(e.0, o.0)), h = max(0, min(e.3, o.3) - max(e.1, o.1))
                return w * h < 0.05 * min((e.2 - e.0) * (e.3 - e.1), (o.2 - o.0) * (o.3 - o.1))
            }
            if clear { objects.append(candidate) }
        }
        return objects
    }

    /// An object of one of `classes`, of log-uniform size (30 px to 70% of the image height).
    func randomObject(_ random: inout RandomNumbers, classes: [SceneClass]) -> SceneObject {
        let kind = classes[Int(random.next() % UInt64(classes.count))]
        let size = 30 * powf(Float(height) * 0.7 / 30, random.unit())
        let x = Float(width) * (0.1 + 0.8 * random.unit())
        let bottom = min(Float(height), size + (Float(height) - size) * random.unit() + 0.1 * size)
        switch kind {
        case .person: return .person(x: x, bottom: bottom, height: size, &random)
        case .car: return .car(x: x, bottom: bottom, height: size * 0.6, &random)
        case .sign: return .sign(x: x, bottom: bottom, height: size, &random)
        }
    }

    /// Row-major RGB floats in [0, 1]: value noise, stripes or checks, or a crop of a texture image.
    func background(_ random: inout RandomNumbers) -> [Float] {
        var canvas = [Float](repeating: 0, count: 3 * width * height)
        let kind = Int(random.next() % UInt64(textures.isEmpty ? 2 : 3))
        switch kind {
        case 0:
            let cells = 3 + Int(random.next() % 6)
            let grid = (0..<(cells * cells * 3)).map { _ in 0.15 + 0.7 * random.unit() }
            for y in 0..<height {
                let gy = Float(y) / Float(height) * Float(cells - 1)
                let y0 = Int(gy), y1 = min(y0 + 1, cells - 1), fy = gy - Float(y0)
                for x in 0..<width {
                    let gx = Float(x) / Float(width) * Float(cells - 1)
                    let x0 = Int(gx), x1 = min(x0 + 1, cells - 1), fx = gx - Float(x0)
                    for c in 0..<3 {
                        func g(_ r: Int, _ q: Int) -> Float { grid[(r * cells + q) * 3 + c] }
                        canvas[(y * width + x) * 3 + c] =
                            (g(y0, x0) * (1 - fx) + g(y0, x1) * fx) * (1 - fy) + (g(y1, x0) * (1 - fx) + g(y1, x1) * fx) * fy
                    }
                }
            }
        case 1:
            let a = (random.unit(), random.unit(), random.unit()), b = (random.unit(), random.unit(), random.unit())
            let period = Float(8 + Int(random.next() % 40)), angle = random.unit() * .pi
            let checks = random.unit() < 0.5
            for y in 0..<height {
                for x in 0..<width {
                    let u = (Float(x) * cosf(angle) + Float(y) * sinf(angle)) / period
                    let v = (-Float(x) * sinf(angle) + Float(y) * cosf(angle)) / period
                    let first = checks ? (Int(floorf(u)) + Int(floorf(v))) % 2 == 0 : Int(floorf(u)) % 2 == 0
                    let color = first ? a : b
                    canvas[(y * width + x) * 3] = 0.2 + 0.6 * color.0
                    canvas[(y * width + x) * 3 + 1] = 0.2 + 0.6 * color.1
                    canvas[(y * width + x) * 3 + 2] = 0.2 + 0.6 * color.2
                }
            }
        default:
            let texture = textures[Int(random.next() % UInt64(textures.count))]
            let scale = 0.5 + random.unit()
            let cropW = min(texture.width, max(Int(Float(width) * scale), 8)),
                cropH = min(texture.height, max(Int(Float(height) * scale), 8))
            let ox = Int(random.unit() * Float(texture.width - cropW)), oy = Int(random.unit() * Float(texture.height - cropH))
            for y in 0..<height {
                let sy = oy + y * cropH / height
                for x in 0..<width {
                    let sx = ox + x * cropW / width
                    for c in 0..<3 { canvas[(y * width + x) * 3 + c] = Float(texture.pixels[(sy * texture.width + sx) * 3 + c]) / 255 }
                }
            }
        }
        return canvas
    }
}
