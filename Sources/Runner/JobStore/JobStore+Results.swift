import Engine
import Foundation
import Postgres

/// A shard's images and the fenced commit of their results.
extension JobStore {
    /// The images of a claimed shard that have no result yet, in the shard's order.
    public func pendingImages(_ claim: ShardClaim) throws -> [PendingImage] {
        try connection.query(
            """
            SELECT i.id, i.path FROM images i LEFT JOIN image_results r ON r.image_id = i.id
            WHERE i.shard_id = \(claim.shardID) AND r.image_id IS NULL ORDER BY i.position
            """, purpose: "listing the images of shard \(claim.shardID)"
        ).records.map { PendingImage(id: try $0.decode("id"), path: try $0.decode("path")) }
    }

    /// Commits a shard's results and its completion in one transaction, fenced by the claim's token: one statement
    /// per table. False when the token no longer holds the shard (nothing is written).
    ///
    /// Each image's database time is the claim and listing time the results carry plus this commit's time up to its
    /// last statement, divided among the shard's images.
    public func commit(_ results: ShardResults, claim: ShardClaim, worker: Int) throws -> Bool {
        let timer = Stopwatch()
        do {
            return try transaction { () -> Bool in
                // The fence first: completing locks the shard's row, and a lost token ends the transaction before
                // any result row is tried.
                guard try complete(claim, worker: worker, startedAt: results.started) else { throw ShardInterruption.leaseLost }
                try insert(results.objects, into: "heat_map_objects")
                try insert(results.detections, into: "detections")
                try insert(results.agreement, into: "map_agreement")
                let perImage = (timer.milliseconds + results.databaseMillisecondsBefore) / Double(max(results.imageCount, 1))
                try insert(results.images.map { $0.row(claim: claim, databaseMilliseconds: perImage) }, into: "image_results")
                return true
            }
        } catch ShardInterruption.leaseLost {
            return false
        }
    }
}
