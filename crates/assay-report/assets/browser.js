// The sample browser of assay's report and web view: documents of one task across runs, each
// run's answer (chosen choice or extracted answer) marked right or wrong, a filter to the
// documents where the runs disagree, and per document the prompt, every choice's
// log-probability per run, and the generations.
(function () {
  'use strict';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.append(c);
    });
    return node;
  }

  function argmax(xs) {
    var best = -1;
    xs.forEach(function (x, i) {
      if (best < 0 || x > xs[best]) best = i;
    });
    return best;
  }

  function short(text, n) {
    text = String(text == null ? '' : text).trim();
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  }

  // What a run answered, in a few words.
  function answerText(doc, a) {
    if (!a) return '—';
    if (a.logprobs.length && doc.choices.length) {
      var i = argmax(a.logprobs);
      return short(doc.choices[i], 40);
    }
    if (a.extracted != null) return short(a.extracted, 40);
    if (a.generation != null) return short(a.generation, 40);
    return '';
  }

  function mark(a) {
    if (!a || a.correct == null) return el('span', {});
    return a.correct
      ? el('span', { class: 'right', text: ' ✓' })
      : el('span', { class: 'wrong', text: ' ✗' });
  }

  function detail(doc, runs) {
    var box = el('div', {});
    var prompts = doc.answers.filter(function (a) { return a; }).map(function (a) { return a.prompt; });
    if (prompts.every(function (p) { return p === doc.prompt; })) {
      box.append(el('strong', { text: 'Prompt' }), el('pre', { text: doc.prompt }));
    } else {
      doc.answers.forEach(function (a, i) {
        if (a) box.append(el('strong', { text: 'Prompt of ' + runs[i] }), el('pre', { text: a.prompt }));
      });
    }
    box.append(el('div', {}, [el('strong', { text: 'Target: ' }), document.createTextNode(doc.target)]));
    if (doc.choices.length) {
      var head = el('tr', {}, [el('th', { text: 'Choice' })]);
      runs.forEach(function (r) {
        head.append(el('th', { text: r + ' log p' }));
      });
      var table = el('table', { class: 'choices' }, [el('thead', {}, [head])]);
      var body = el('tbody', {});
      doc.choices.forEach(function (choice, i) {
        var tr = el('tr', {}, [el('td', { text: short(choice, 90) })]);
        doc.answers.forEach(function (a) {
          var td = el('td', { class: 'num' });
          if (a && a.logprobs[i] != null) {
            td.textContent = a.logprobs[i].toFixed(3) + (a.greedy[i] ? ' (greedy)' : '');
            if (argmax(a.logprobs) === i) td.style.fontWeight = '600';
          }
          tr.append(td);
        });
        body.append(tr);
      });
      table.append(body);
      box.append(table);
    }
    doc.answers.forEach(function (a, i) {
      if (a && a.generation != null) {
        box.append(el('div', {}, [
          el('strong', { text: runs[i] + ': ' }),
          document.createTextNode('extracted ' + JSON.stringify(a.extracted)),
          mark(a),
        ]));
        box.append(el('pre', { text: a.generation }));
      }
    });
    return box;
  }

  function mount(root, opts) {
    root.textContent = '';
    var select = el('select', { id: 'task-select' });
    opts.tasks.forEach(function (t) {
      select.append(el('option', { value: t, text: t }));
    });
    var disagree = el('input', { type: 'checkbox', id: 'disagree-only' });
    var count = el('span', { id: 'doc-count', class: 'muted' });
    var controls = el('div', { class: 'controls' }, [
      el('label', {}, [document.createTextNode('Task '), select]),
      el('label', {}, [disagree, document.createTextNode(' only documents where the runs disagree')]),
      count,
    ]);
    var table = el('table', { class: 'docs', id: 'doc-table' });
    var more = el('button', { id: 'more-docs', text: 'Show more' });
    root.append(controls, table, more);
    var docs = [];
    var shown = 50;

    function render() {
      var list = disagree.checked ? docs.filter(function (d) { return d.disagree; }) : docs;
      count.textContent = list.length + ' of ' + docs.length + ' documents';
      table.textContent = '';
      var head = el('tr', {}, [el('th', { text: 'Doc' }), el('th', { text: 'Target' })]);
      opts.runs.forEach(function (r) {
        head.append(el('th', { text: r }));
      });
      table.append(el('thead', {}, [head]));
      var body = el('tbody', {});
      list.slice(0, shown).forEach(function (doc) {
        var tr = el('tr', { class: 'doc' + (doc.disagree ? ' disagree' : ''), 'data-doc': doc.doc_id }, [
          el('td', { text: String(doc.doc_id) }),
          el('td', { text: short(doc.target, 40) }),
        ]);
        doc.answers.forEach(function (a) {
          tr.append(el('td', {}, [document.createTextNode(answerText(doc, a)), mark(a)]));
        });
        var open = null;
        tr.addEventListener('click', function () {
          if (open) {
            open.remove();
            open = null;
            return;
          }
          open = el('tr', { class: 'detail' }, [el('td', { colspan: String(2 + opts.runs.length) }, [detail(doc, opts.runs)])]);
          tr.after(open);
        });
        body.append(tr);
      });
      table.append(body);
      more.hidden = list.length <= shown;
    }

    function load() {
      count.textContent = 'loading…';
      Promise.resolve(opts.load(select.value)).then(function (d) {
        docs = d || [];
        shown = 50;
        render();
      }, function (err) {
        count.textContent = 'error: ' + err;
      });
    }

    select.addEventListener('change', load);
    disagree.addEventListener('change', render);
    more.addEventListener('click', function () {
      shown += 50;
      render();
    });
    if (opts.tasks.length) load();
    else count.textContent = 'no task has per-sample lines in every selected run';
  }

  window.AssayBrowser = { mount: mount };
})();
