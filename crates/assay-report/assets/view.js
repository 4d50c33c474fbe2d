// assay view: the runs of the registry, a comparison of any selection, and its samples.
(function () {
  'use strict';
  var status = document.getElementById('status');

  function getJson(url) {
    return fetch(url).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
    });
  }

  function cell(text) {
    var td = document.createElement('td');
    td.textContent = text == null ? '' : text;
    return td;
  }

  function showRuns(data) {
    document.getElementById('registry').textContent = 'Registry: ' + data.registry;
    var table = document.getElementById('runs-table');
    table.textContent = '';
    var head = document.createElement('tr');
    ['', 'Baseline', 'ID', 'Label', 'Date', 'Model', 'Tool', 'Tasks', 'Meta'].forEach(function (h) {
      var th = document.createElement('th');
      th.textContent = h;
      head.append(th);
    });
    var thead = document.createElement('thead');
    thead.append(head);
    table.append(thead);
    var body = document.createElement('tbody');
    data.runs.forEach(function (run) {
      var tr = document.createElement('tr');
      var pick = document.createElement('input');
      pick.type = 'checkbox';
      pick.className = 'run-check';
      pick.value = run.id;
      var base = document.createElement('input');
      base.type = 'radio';
      base.name = 'baseline';
      base.className = 'run-baseline';
      base.value = run.id;
      var td0 = document.createElement('td');
      td0.append(pick);
      var td1 = document.createElement('td');
      td1.append(base);
      tr.append(td0, td1, cell(run.id), cell(run.label), cell(run.date), cell(run.model), cell(run.tool),
        cell(run.tasks.join(', ')), cell(Object.keys(run.meta).map(function (k) { return k + '=' + run.meta[k]; }).join(' ')));
      body.append(tr);
    });
    table.append(body);
    if (!data.runs.length) status.textContent = 'The registry is empty: `assay run` records runs; `assay runs import DIR` adds lm-eval results.';
  }

  function compare() {
    var ids = Array.prototype.map.call(document.querySelectorAll('.run-check:checked'), function (c) { return c.value; });
    if (ids.length < 2) {
      status.textContent = 'Tick at least two runs to compare.';
      return;
    }
    var chosen = document.querySelector('.run-baseline:checked');
    var baseline = chosen && ids.indexOf(chosen.value) >= 0 ? chosen.value : ids[0];
    var query = 'runs=' + ids.join(',') + '&baseline=' + baseline;
    status.textContent = 'comparing…';
    getJson('/api/compare?' + query).then(function (result) {
      status.textContent = 'Compared ' + result.runs.join(', ') + ' against ' + result.runs[result.baseline] + '.';
      document.getElementById('comparison').innerHTML = result.html;
      var link = document.getElementById('report-link');
      link.href = '/api/report?' + query;
      link.setAttribute('download', 'assay-report.html');
      link.hidden = false;
      document.getElementById('samples-section').hidden = false;
      AssayBrowser.mount(document.getElementById('samples'), {
        runs: result.runs,
        tasks: result.sample_tasks,
        load: function (task) {
          return getJson('/api/samples?runs=' + result.ids.join(',') + '&task=' + encodeURIComponent(task)).then(function (s) { return s.docs; });
        },
      });
    }).catch(function (err) {
      status.innerHTML = '';
      var span = document.createElement('span');
      span.className = 'error';
      span.textContent = 'error: ' + err.message;
      status.append(span);
    });
  }

  document.getElementById('compare-btn').addEventListener('click', compare);
  getJson('/api/runs').then(showRuns).catch(function (err) {
    status.textContent = 'error: ' + err.message;
  });
})();
