public import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// A seeded pseudo-random generator (xoshiro256**), so initialization and augmentation are reproducible.
public struct RandomNumbers: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into a well-mixed state.
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// A float uniform in [0, 1).
    public mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// A standard normal float (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(unit(), 1e-7), u2 = unit()
        return sqrtf(-2 * logf(u1)) * cosf(2 * .pi * u2)
    }

    public mutating func uniform(_ shape: [Int], _ low: Float, _ high: Float) -> Tensor {
        var generator = self
        let tensor = Tensor(shape: shape) { _ in low + (high - low) * generator.unit() }
        self = generator
        return tensor
    }

    public mutating func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1) -> Tensor {
        var generator = self
        let tensor = Tensor(shape: shape) { _ in mean + standardDeviation * generator.normal() }
        self = generator
        return tensor
    }
}
