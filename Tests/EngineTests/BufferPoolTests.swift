import Engine
import Testing

/// The buffer pool keeps what is reused and frees what is not: sizes unused for its epochs go at an epoch's end,
/// and the cache stays within twice the working set.
struct BufferPoolTests {
    @Test func sizesNotReusedAreFreedAfterTheirEpochs() {
        let pool = BufferPool(limitBytes: nil, keptEpochs: 2)
        let steady = 1 << 16, once = 3 << 16
        func use(_ count: Int) { pool.give(pool.take(count: count), count: count) }
        use(steady)
        use(once)
        #expect(pool.cachedBytes == 4 * (steady + once))
        for _ in 0..<3 {
            use(steady)
            pool.endEpoch()
        }
        #expect(pool.cachedBytes == 4 * steady, "the size used once is freed, the one used every epoch kept")
    }

    @Test func theCacheStaysWithinTwiceTheWorkingSet() {
        let pool = BufferPool(limitBytes: nil, keptEpochs: 0)
        // Many distinct sizes, one at a time: the working set is one buffer, the cache at most twice it (or the
        // 64 MiB floor).
        for k in 0..<200 {
            let count = (1 << 20) + k * 1024
            pool.give(pool.take(count: count), count: count)
        }
        #expect(pool.cachedBytes <= 64 << 20)
        let unbounded = BufferPool(limitBytes: 8 << 30, keptEpochs: 0)
        for k in 0..<200 {
            let count = (1 << 20) + k * 1024
            unbounded.give(unbounded.take(count: count), count: count)
        }
        #expect(unbounded.cachedBytes > 500 << 20, "a fixed cap keeps every size, as ODAM_POOL_BYTES asks")
        unbounded.endEpoch()
    }
}
