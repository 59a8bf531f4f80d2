extension RGBImage {
    /// The image scaled down so that its longer side is at most `side` pixels, each output pixel the mean of the source
    /// pixels it covers (area averaging, so thumbnails do not alias); an image already small enough is returned as is.
    public func downscaled(toFit side: Int) -> RGBImage {
        let scale = Double(max(width, height)) / Double(max(side, 1))
        guard scale > 1 else { return self }
        let (outWidth, outHeight) = (max(1, Int((Double(width) / scale).rounded())), max(1, Int((Double(height) / scale).rounded())))
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        for y in 0..<outHeight {
            let (top, bottom) = (y * height / outHeight, max((y + 1) * height / outHeight, y * height / outHeight + 1))
            for x in 0..<outWidth {
                let (left, right) = (x * width / outWidth, max((x + 1) * width / outWidth, x * width / outWidth + 1))
                var sums = (0, 0, 0)
                for sourceY in top..<bottom {
                    for sourceX in left..<right {
                        let offset = 3 * (sourceY * width + sourceX)
                        sums = (sums.0 + Int(pixels[offset]), sums.1 + Int(pixels[offset + 1]), sums.2 + Int(pixels[offset + 2]))
                    }
                }
                let count = (bottom - top) * (right - left)
                let target = 3 * (y * outWidth + x)
                out[target] = UInt8((sums.0 + count / 2) / count)
                out[target + 1] = UInt8((sums.1 + count / 2) / count)
                out[target + 2] = UInt8((sums.2 + count / 2) / count)
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }
}
