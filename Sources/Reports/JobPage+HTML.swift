import Foundation
import Runner

extension JobPage {
    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#fff}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
        dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:12px 0}
        dl.summary dt{color:#555}dl.summary dd{margin:0;font-variant-numeric:tabular-nums}
        table{border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
        th.sortable{cursor:pointer;user-select:none;background:#f3f5f8}th.sortable:hover{background:#e3e9f2}
        th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
        td.num{text-align:right}img.thumb{max-width:240px;display:block}.why{color:#8a4b00;font-size:12px}
        .problem{color:#a00;font-size:12px}.controls{margin:8px 0}
        """

    /// Sorting by a column (click a header; again to reverse) and filtering by class, over the rows already in the
    /// page, so it works opened from disk without a server.
    static let script = """
        (function(){
          const table=document.getElementById('detections');if(!table)return;
          const body=table.tBodies[0],filter=document.getElementById('class-filter');
          function sortBy(key,descending){
            const header=table.querySelector('th.sortable[data-key="'+key+'"]');if(!header)return;
            const numeric=header.dataset.type==='number';
            table.querySelectorAll('th.sortable').forEach(function(h){h.removeAttribute('aria-sort')});
            header.setAttribute('aria-sort',descending?'descending':'ascending');
            const rows=Array.from(body.rows);
            rows.sort(function(a,b){
              let x=a.dataset[key],y=b.dataset[key];
              if(numeric){x=x===''?-Infinity:parseFloat(x);y=y===''?-Infinity:parseFloat(y);return descending?y-x:x-y}
              return descending?y.localeCompare(x):x.localeCompare(y)});
            rows.forEach(function(row){body.appendChild(row)});
          }
          function show(name){
            let shown=0;
            Array.from(body.rows).forEach(function(row){
              const visible=name===''||row.dataset.class===name;row.hidden=!visible;if(visible)shown++});
            document.getElementById('shown').textContent=shown;
          }
          // The view lives in the address (#sort=energy:asc&class=person), so it can be bookmarked and shared.
          function remember(){
            const sorted=table.querySelector('th[aria-sort]');
            const parts=[];
            if(sorted)parts.push('sort='+sorted.dataset.key+(sorted.getAttribute('aria-sort')==='ascending'?':asc':''));
            if(filter.value!=='')parts.push('class='+encodeURIComponent(filter.value));
            history.replaceState(null,'',parts.length?'#'+parts.join('&'):location.pathname);
          }
          table.querySelectorAll('th.sortable').forEach(function(header){
            header.addEventListener('click',function(){
              sortBy(header.dataset.key,header.getAttribute('aria-sort')!=='descending');remember()});
          });
          filter.addEventListener('change',function(){show(filter.value);remember()});
          const state={};
          location.hash.slice(1).split('&').forEach(function(part){
            const i=part.indexOf('=');if(i>0)state[part.slice(0,i)]=decodeURIComponent(part.slice(i+1))});
          if(state.sort){const [key,order]=state.sort.split(':');sortBy(key,order!=='asc')}
          if(state.class!==undefined&&Array.from(filter.options).some(function(o){return o.value===state.class})){
            filter.value=state.class;show(state.class)}
        })();
        """

    static func html(
        job: StoredJob, progress: JobProgress, summary: JobSummary, failures: [ImageFailure], detections: [ExportedDetection],
        totalDetections: Int, thumbnails: [Int: String], picks: [Int: Pick], problems: [Int: String]
    ) -> String {
        let e = escaped
        var page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>odam job \(job.id): \(e(job.name))</title><style>\(style)</style></head><body>
            <h1>odam job \(job.id): \(e(job.name))</h1>
            <div>source \(e(job.source)) · model \(e(job.spec.model.spec)) · maps \(e(summary.mapPaths.joined(separator: ", ")))</div>
            <h2>Summary</h2><dl class="summary" id="summary">
            <dt>images</dt><dd>\(progress.imageCount)</dd>
            <dt>ok</dt><dd>\(summary.imagesOK)</dd>
            <dt>failed</dt><dd>\(summary.imagesFailed)</dd>
            <dt>lost with failed shards</dt><dd>\(progress.imagesLost)</dd>
            <dt>detections kept</dt><dd>\(summary.detectionsKept) (plain NMS would keep \(summary.keptByNMS)) of \(summary.candidates) candidates</dd>
            <dt>lowest r of a checked map against autograd</dt><dd>\(number(summary.minimumMapR, 5)); levels recomputed \(summary.levelsRecomputed)</dd>
            <dt>elapsed</dt><dd>\(number(progress.elapsedSeconds, 1)) s\(progress.isFinished ? "" : " (still running)")</dd>
            </dl>
            <h2>Mean time per image by step</h2>\(timingPlot(summary))

            """
        let classes = Set(detections.map { labelName($0) }).sorted()
        page += """
            <h2>Detections</h2>
            <div class="controls"><label>class <select id="class-filter"><option value="">all</option>\
            \(classes.map { "<option value=\"\(e($0))\">\(e($0))</option>" }.joined())</select></label> \
            · showing <span id="shown">\(detections.count)</span> of \(totalDetections)\
            \(totalDetections > detections.count ? " (the highest scores; every detection is in SQL: detection_maps)" : "") \
            · click a column's name to sort (the view is kept in the address: #sort=energy:asc&amp;class=NAME)</div>
            <table id="detections"><thead><tr><th>map</th><th>image</th><th>rank</th>\
            <th class="sortable" data-key="class" data-type="text">class</th>\
            <th class="sortable" data-key="score" data-type="number" aria-sort="descending">score</th>\
            <th class="sortable" data-key="energy" data-type="number">energy in box</th><th>peak in box</th>\
            <th class="sortable" data-key="correlation" data-type="number">max correlation</th>\
            <th class="sortable" data-key="compactness" data-type="number">compactness</th></tr></thead><tbody>

            """
        for (index, d) in detections.enumerated() {
            var cell = ""
            if let file = thumbnails[index] {
                cell = "<img class=\"thumb\" loading=\"lazy\" src=\"\(e(file))\" alt=\"combined map of \(e(d.path)) detection \(d.rank)\">"
                if let pick = picks[index], pick != .highestScore { cell += "<div class=\"why\">\(e(pick.rawValue))</div>" }
            } else if let problem = problems[index] {
                cell = "<div class=\"problem\">no thumbnail: \(e(problem))</div>"
            }
            func data(_ value: Double?) -> String { value.map { String($0) } ?? "" }
            page += """
                <tr data-class="\(e(labelName(d)))" data-score="\(d.score)" data-energy="\(data(d.energyInBox))" \
                data-correlation="\(data(d.maxCorrelation))" data-compactness="\(data(d.compactness))">\
                <td>\(cell)</td><td>\(e(d.path))</td><td class="num">\(d.rank)</td><td>\(e(labelName(d)))</td>\
                <td class="num">\(number(d.score, 3))</td><td class="num">\(number(d.energyInBox, 3))</td>\
                <td>\(d.peakInBox.map { $0 ? "yes" : "no" } ?? "–")</td><td class="num">\(number(d.maxCorrelation, 3))</td>\
                <td class="num">\(number(d.compactness, 3))</td></tr>

                """
        }
        page += "</tbody></table>\n<h2>Failures</h2>\n"
        if failures.isEmpty {
            page += "<p id=\"failures\">none</p>\n"
        } else {
            page += "<table id=\"failures\"><thead><tr><th>image</th><th>cause</th></tr></thead><tbody>\n"
            for failure in failures { page += "<tr><td>\(e(failure.path))</td><td>\(e(failure.error ?? "–"))</td></tr>\n" }
            page += "</tbody></table>\n"
        }
        return page + "<script>\(script)</script>\n</body></html>\n"
    }

    static func labelName(_ detection: ExportedDetection) -> String { detection.labelName ?? "label \(detection.label)" }
}
