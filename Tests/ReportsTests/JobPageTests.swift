import Reports
import Runner
import Testing

/// Which detections the report draws, and its escaping of what users named.
struct JobPageTests {
    static func detection(_ index: Int, score: Double, energy: Double?, correlation: Double?) -> ExportedDetection {
        ExportedDetection(
            imageID: index, path: "\(index).png", rank: 0, x1: 0, y1: 0, x2: 1, y2: 1, score: score, label: 1, energyInBox: energy,
            peakInBox: nil, compactness: nil, maxCorrelation: correlation, mapsKey: nil)
    }

    @Test func thumbnailsGoToTheBestAndTheMostSurprisingDetections() {
        // Scores fall with the index; energy in box rises; correlation is highest at the end.
        let detections = (0..<30).map {
            Self.detection($0, score: 1 - Double($0) / 100, energy: Double($0) / 30, correlation: Double($0 % 10) / 10)
        }
        let picks = JobPage.picks(detections, limit: 9)
        #expect(picks.count == 9)
        #expect(Set(picks.filter { $0.value == .highestScore }.keys) == [0, 1, 2])
        #expect(Set(picks.filter { $0.value == .lowestEnergy }.keys) == [3, 4, 5], "the lowest energies not already drawn")
        #expect(Set(picks.filter { $0.value == .highestCorrelation }.keys) == [9, 19, 29])
        #expect(JobPage.picks(Array(detections.prefix(4)), limit: 9).count == 4, "a small job: every detection")
    }

    @Test func escapesMarkup() {
        #expect(JobPage.escaped("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;")
    }
}
