/// Size arithmetic on numbers read from untrusted files: every product and sum is checked, and an overflow is
/// reported as `nil` for the caller to turn into an error naming the file, instead of a trap or a wrapped value.
enum CheckedSize {
    /// `shape`'s element count times `elementSize`, or nil when a dimension is negative or the product overflows.
    static func byteCount(shape: [Int], elementSize: Int) -> Int? {
        var total = elementSize
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// `a * b + c`, or nil on overflow.
    static func multiplyAdd(_ a: Int, _ b: Int, _ c: Int = 0) -> Int? {
        let (product, productOverflow) = a.multipliedReportingOverflow(by: b)
        let (sum, sumOverflow) = product.addingReportingOverflow(c)
        return productOverflow || sumOverflow ? nil : sum
    }

    /// `a + b`, or nil on overflow.
    static func add(_ a: Int, _ b: Int) -> Int? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }
}
