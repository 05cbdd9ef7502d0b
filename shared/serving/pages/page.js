// The demo page's script: one renderer per page kind (KINDS below), shared helpers above it.
// No dependencies and nothing fetched from elsewhere: it talks to this server's /predict and /metadata.
(() => {
  'use strict';
  const CONFIG = JSON.parse(document.getElementById('page-config').textContent);
  const TOKEN_KEY = 'mlref_token';
  const $ = (id) => document.getElementById(id);
  const form = $('form');
  const result = $('result');

  // ------------------------------------------------------------------ DOM and number helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key === 'style') node.style.cssText = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'text') node.textContent = value; else node.setAttribute(key, value);
    }
    return node;
  }
  // numbers as people read them: integers as they are, others to about three significant digits
  function num(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return v === null || v === undefined ? '–' : String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a < 0.001) return v.toPrecision(2);
    const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
    return String(Number(v.toFixed(digits)));  // no trailing zeros: 0.5, not 0.500
  }
  const pct = (v) => (typeof v === 'number' ? (100 * v).toFixed(1) + '%' : '–');
  const chars = (s) => Array.from(s);  // offsets from the server count characters (code points)
  const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);
  const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#0fa3a3', '#c51b8a', '#808000',
                  '#9a6324', '#000075', '#e6a700', '#469990'];
  const colorOf = (names) => (name) => COLORS[Math.max(0, names.indexOf(name)) % COLORS.length];

  function table(columns, rows, opts = {}) {
    // columns: [[header, (row) => value, 'num'?]]; a number cell is rounded and right-aligned
    const head = el('tr', null, columns.map(([h, , k]) => el('th', {class: k, text: h})));
    const body = rows.map((row, i) => el('tr', {class: opts.highlight && opts.highlight(row, i) ? 'hit' : null},
      columns.map(([, get, k]) => {
        const v = get(row, i);
        return el('td', {class: k, text: k === 'num' ? num(v) : (v === null || v === undefined ? '–' : String(v))});
      })));
    return el('div', {class: 'table-wrap'}, el('table', {class: opts.class}, el('thead', null, head), el('tbody', null, body)));
  }

  // probability bars: entries [[label, value 0..1]], best first; the best one is filled darker
  function bars(entries, opts = {}) {
    const best = Math.max(...entries.map(([, v]) => v));
    return el('div', {class: 'bars'}, entries.flatMap(([label, v]) => [
      el('span', {class: 'bar-label', title: label, text: label}),
      el('div', {class: 'bar-track'},
        el('div', {class: 'bar-fill' + (v === best ? ' top' : ''), style: `width:${Math.max(0, Math.min(1, v)) * 100}%`}),
        opts.mark !== undefined ? el('div', {class: 'bar-mark', title: 'threshold', style: `left:${opts.mark * 100}%`}) : null),
      el('span', {class: 'bar-value', text: pct(v)}),
    ]));
  }

  // signed values around a centre line (contributions in log-odds): up = towards the positive class
  function divergingBars(entries) {
    const span = Math.max(1e-9, ...entries.map(([, v]) => Math.abs(v)));
    return el('div', {class: 'bars diverging'}, entries.flatMap(([label, v]) => {
      const w = (Math.abs(v) / span) * 50;
      const style = v >= 0 ? `width:${w}%` : `width:${w}%;left:${50 - w}%`;
      return [el('span', {class: 'bar-label', title: label, text: label}),
        el('div', {class: 'bar-track'}, el('div', {class: 'bar-fill ' + (v >= 0 ? 'up' : 'down'), style})),
        el('span', {class: 'bar-value', text: (v > 0 ? '+' : '') + num(v)})];
    }));
  }

  function legend(entries) {  // [[name, color, extra text]]
    return el('div', {class: 'legend'}, entries.map(([name, color, extra]) =>
      el('span', {class: 'legend-item'}, el('span', {class: 'swatch', style: `background:${color}`}), name,
        extra ? el('span', {class: 'muted', text: ' ' + extra}) : null)));
  }

  // ------------------------------------------------------------------ talking to the server
  class ApiError extends Error {
    constructor(status, message, fields) { super(message); this.status = status; this.fields = fields; }
  }

  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) headers.set('Authorization', 'Bearer ' + token);
    let response;
    try {
      response = await fetch(path, {...init, headers});
    } catch (e) {
      throw new ApiError(0, `the server did not answer (${e.message}); is it still running?`);
    }
    const text = await response.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON: shown as text below */ }
    if (!response.ok) {
      const message = body && typeof body.error === 'string' ? body.error : (text || response.statusText);
      if (response.status === 401) showAuth(true);
      throw new ApiError(response.status, message, body && body.fields);
    }
    return body;
  }

  async function metadata() {  // the model's /metadata, or null (the error is shown) when it is refused
    try { return await api('/metadata'); } catch (e) { showError(e); return null; }
  }

  function showError(err) {
    const box = $('error');
    box.replaceChildren(el('strong', {text: err.status ? `${err.status}: ` : ''}), err.message);
    if (Array.isArray(err.fields) && err.fields.length) {
      box.append(el('ul', null, err.fields.map((f) => el('li', null, el('code', {text: f.field}), ' ', f.message))));
    }
    box.hidden = false;
  }
  const clearError = () => { $('error').hidden = true; $('error').replaceChildren(); };

  function showAuth(focus) {
    $('auth').hidden = false;
    $('token').value = localStorage.getItem(TOKEN_KEY) || '';
    if (focus && !$('token').value) $('token').focus();
  }
  $('token-save').addEventListener('click', () => {
    const value = $('token').value.trim();
    if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
    clearError();
    start();  // rebuild what needed /metadata
  });
  $('token-clear').addEventListener('click', () => { localStorage.removeItem(TOKEN_KEY); $('token').value = ''; });

  // long strings (base64 images and masks) cut short, so the JSON view stays readable
  const shorten = (value) => JSON.stringify(value, (k, v) =>
    typeof v === 'string' && v.length > 160 ? `${v.slice(0, 60)}… (${v.length} characters)` : v, 2);

  // ------------------------------------------------------------------ shared form parts
  function textArea(id, labelText, value, hint) {
    return [el('label', {for: id, text: labelText}), el('textarea', {id, rows: 4}, value),
      hint ? el('p', {class: 'hint', text: hint}) : null];
  }

  // a record of named features (churn, segments): a select for categoricals, a number box for numerics
  function recordFields(record, features) {
    const byName = Object.fromEntries((features || []).map((f) => [f.name, f]));
    return el('div', {class: 'grid'}, Object.entries(record).map(([name, value]) => {
      const f = byName[name] || {};
      const id = 'f-' + name;
      let input;
      if (Array.isArray(f.categories) && f.categories.length) {
        input = el('select', {id, 'data-field': name, 'data-kind': 'category'},
          el('option', {value: '', text: '(missing)'}),
          f.categories.map((c) => el('option', {value: c, text: c, selected: c === value})));
      } else if (typeof value === 'number' || (f.kind && f.kind !== 'categorical')) {
        input = el('input', {id, type: 'number', step: 'any', 'data-field': name, 'data-kind': 'number',
          value: value === null || value === undefined ? '' : String(value)});
      } else {
        input = el('input', {id, type: 'text', 'data-field': name, 'data-kind': 'text', value: value ?? ''});
      }
      return el('div', null, el('label', {for: id, text: name}), input);
    }));
  }
  function readRecord() {
    const record = {};
    for (const input of form.querySelectorAll('[data-field]')) {
      const raw = input.value.trim();
      if (raw === '') record[input.dataset.field] = null;
      else record[input.dataset.field] = input.dataset.kind === 'number' ? Number(raw) : raw;
    }
    return record;
  }
  // the record form of a table kind (churn, regress, segments): the run's /metadata kept on the kind for its
  // render, the example's first record as fields
  async function buildRecordForm(kind, example) {
    kind.meta = await metadata();
    form.append(el('h2', {text: 'Record', style: 'margin-top:0'}),
      recordFields((example.instances || [{}])[0], kind.meta && kind.meta.features));
  }
  function recordRequest() { return {json: {instances: [readRecord()]}}; }

  // image uploads: a file picker, drag and drop of several files, and the run's own example image
  const picked = [];  // [{name, blob, url}]
  function imagePicker() {
    const input = el('input', {id: 'files', type: 'file', accept: 'image/*', multiple: true,
      onchange: () => { addFiles(input.files); input.value = ''; }});
    const zone = el('div', {id: 'drop', class: 'drop'},
      el('p', {style: 'margin:0 0 0.5rem'}, 'Drop images here, or ', el('label', {for: 'files', class: 'inline',
        style: 'display:inline;color:var(--accent);text-decoration:underline;cursor:pointer', text: 'choose files'}),
        ' (several at once).'), input,
      CONFIG.example_image ? el('button', {type: 'button', id: 'use-example', onclick: useExample},
        'Add the example image') : el('p', {class: 'hint', text: 'No example image: this run\'s data is not on the server.'}),
      el('div', {id: 'thumbs', class: 'thumbs'}));
    input.style.cssText = 'position:absolute;width:1px;height:1px;opacity:0';
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => { e.preventDefault(); zone.classList.remove('over'); addFiles(e.dataTransfer.files); });
    return zone;
  }
  function addFiles(files) {
    for (const file of files) {
      if (file.type && !file.type.startsWith('image/')) {
        showError(new ApiError(0, `${file.name} is not an image (${file.type})`));
        continue;
      }
      picked.push({name: file.name, blob: file, url: URL.createObjectURL(file)});
    }
    drawThumbs();
  }
  async function useExample() {
    const blob = await (await fetch(CONFIG.example_image)).blob();
    const ext = blob.type.split('/')[1] || 'png';
    picked.push({name: `example.${ext}`, blob, url: URL.createObjectURL(blob)});
    drawThumbs();
  }
  function drawThumbs() {
    $('thumbs').replaceChildren(...picked.map((p, i) => el('figure', {class: 'thumb', style: 'margin:0'},
      el('img', {src: p.url, alt: p.name}), el('figcaption', {text: p.name}),
      el('button', {type: 'button', title: 'remove', onclick: () => { picked.splice(i, 1); drawThumbs(); }}, '×'))));
  }
  function imageRequest(extra = {}) {
    if (!picked.length) throw new ApiError(0, 'choose or drop at least one image first');
    const body = new FormData();
    for (const p of picked) body.append('file', p.blob, p.name);
    for (const [k, v] of Object.entries(extra)) body.append(k, String(v));
    return {form: body, shown: {files: picked.map((p) => p.name), ...extra}, images: picked.slice()};
  }
  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error('the image could not be shown'));
      img.src = url;
    });
  }

  // ------------------------------------------------------------------ the kinds
  // build(example, meta) fills the form; request() -> {json} or {form, shown}; render(response, request)
  const KINDS = {};

  KINDS.json = {
    build(example) { form.append(...textArea('request', 'Request (JSON)', JSON.stringify(example ?? {}, null, 2))); $('request').classList.add('code'); },
    request() {
      try { return {json: JSON.parse($('request').value)}; }
      catch (e) { throw new ApiError(0, `the request is not valid JSON: ${e.message}`); }
    },
    render(response) { result.append(el('h2', {text: 'Answer'}), el('pre', {class: 'answer', text: shorten(response)})); },
  };

  KINDS['text-classify'] = {
    build(example) { form.append(...textArea('texts', 'Texts', (example.instances || []).join('\n'), 'One text per line.')); },
    request() { return {json: {instances: lines($('texts').value)}}; },
    render(response, request) {
      response.predictions.forEach((p, i) => {
        const entries = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
        result.append(el('div', {class: 'card prediction'}, el('p', {class: 'quote', text: request.json.instances[i]}),
          el('p', {class: 'big'}, 'Label: ', el('span', {class: 'label', text: p.label})), bars(entries)));
      });
    },
  };

  KINDS.ner = {
    build(example) {
      form.append(...textArea('texts', 'Texts', (example.instances || []).map((x) => x.text).join('\n'), 'One text per line.'));
    },
    request() { return {json: {instances: lines($('texts').value).map((text) => ({text}))}}; },
    render(response, request) {
      const types = [...new Set(['PER', 'LOC', 'ORG', ...response.predictions.flatMap((p) => p.entities.map((e) => e.type))])];
      const color = colorOf(types);
      const seen = types.filter((t) => response.predictions.some((p) => p.entities.some((e) => e.type === t)));
      result.append(legend(seen.map((t) => [t, color(t)])));
      response.predictions.forEach((p, i) => {
        const text = chars(request.json.instances[i].text);
        const out = el('p', {class: 'marked'});
        let at = 0;
        for (const e of [...p.entities].sort((a, b) => a.start - b.start)) {
          if (e.start < at) continue;  // overlapping spans: keep the first
          out.append(text.slice(at, e.start).join(''));
          out.append(el('mark', {class: 'ent', 'data-type': e.type, style: `--c:${color(e.type)}`, title: e.type},
            text.slice(e.start, e.end).join(''), el('span', {class: 'tag', text: e.type})));
          at = e.end;
        }
        out.append(text.slice(at).join(''));
        result.append(el('div', {class: 'card prediction'}, out,
          p.entities.length ? null : el('p', {class: 'muted', text: 'No entities found.'})));
      });
    },
  };

  KINDS.qa = {
    build(example) {
      (example.instances || [{question: '', context: ''}]).forEach((inst, i) => form.append(el('fieldset', {class: 'qa-pair'},
        el('label', {for: `q${i}`, text: 'Question'}), el('input', {id: `q${i}`, type: 'text', class: 'question', value: inst.question}),
        ...textArea(`c${i}`, 'Context', inst.context))));
    },
    request() {
      return {json: {instances: [...form.querySelectorAll('.qa-pair')].map((f) => ({
        question: f.querySelector('.question').value, context: f.querySelector('textarea').value}))}};
    },
    render(response, request) {
      response.predictions.forEach((p, i) => {
        const inst = request.json.instances[i];
        const text = chars(inst.context);
        const found = p.answer && p.end > p.start;
        const marked = el('p', {class: 'marked'});
        if (found) {
          marked.append(text.slice(0, p.start).join(''), el('mark', {class: 'answer', title: `score ${pct(p.score)}`},
            text.slice(p.start, p.end).join('')), text.slice(p.end).join(''));
        } else marked.append(inst.context);
        result.append(el('div', {class: 'card prediction'}, el('p', {class: 'quote', text: 'Q: ' + inst.question}),
          found ? el('p', {class: 'big'}, 'Answer: ', el('span', {class: 'answer-text', text: p.answer}),
            el('span', {class: 'muted', text: ` (score ${pct(p.score)})`})) : el('p', {class: 'note', text: 'No answer found in the context.'}),
          marked));
      });
    },
  };

  KINDS['tabular-classify'] = {
    async build(example) {
      await buildRecordForm(this, example);
      form.append(el('label', {class: 'inline'},
        el('input', {type: 'checkbox', id: 'explain', checked: example.contributions !== false}),
        'Explain: per-feature contributions'));
    },
    request() { return {json: {instances: [readRecord()], contributions: $('explain').checked}}; },
    render(response) {
      const p = response.predictions[0];
      const labels = (this.meta && this.meta.labels) || ['negative', 'positive'];
      const multi = p.probabilities != null;  // more than two classes: a probability per class, no threshold
      result.append(el('div', {class: 'card prediction'},
        el('p', {class: 'big'}, 'Label: ', el('span', {class: 'label', text: p.label}),
          el('span', {class: 'muted', text: multi ? ` (model ${response.model}, the most probable class)`
            : ` (model ${response.model}, threshold ${num(response.threshold)})`})),
        multi ? bars(Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]), {mark: undefined})
          : bars([[labels[1], p.probability], [labels[0], 1 - p.probability]], {mark: undefined}),
        el('p', {class: 'hint', text: multi ? 'The label is the class of the highest probability.'
          : `${labels[1]} is predicted at a probability of ${num(response.threshold)} or more.`})));
      if (p.contributions) {
        const bias = p.contributions['(bias)'];
        const entries = Object.entries(p.contributions).filter(([k]) => k !== '(bias)')
          .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
        const record = readRecord();
        result.append(el('h2', {text: 'Why: per-feature contributions'}),
          el('p', {class: 'hint', text: multi
            ? `In "${p.label}"'s raw score, largest first: a bar to the right pushes towards "${p.label}", ` +
              `to the left away from it. Bias: ${num(bias)}.`
            : `In log-odds, largest first: a bar to the right pushes towards "${labels[1]}", ` +
              `to the left towards "${labels[0]}". Bias (the average log-odds): ${num(bias)}.`}),
          el('div', {class: 'contributions'}, divergingBars(entries.map(([k, v]) =>
            [record[k] === undefined ? k : `${k} = ${record[k] === null ? '(missing)' : num(record[k])}`, v]))));
      }
    },
  };

  KINDS.regress = {
    build(example) { return buildRecordForm(this, example); },
    request: recordRequest,
    render(response) {
      const target = (this.meta && this.meta.target) || 'value';
      const m = (this.meta && this.meta.metrics) || {};
      const split = ['test', 'valid'].find((s) => typeof m[`${s}/rmse`] === 'number');
      result.append(el('div', {class: 'card prediction'},
        el('p', {class: 'big'}, `${target}: `, el('span', {class: 'label', text: num(response.predictions[0].value)}),
          el('span', {class: 'muted', text: ` (model ${response.model})`})),
        split ? el('p', {class: 'hint', text: `On the run's ${split} rows: RMSE ${num(m[`${split}/rmse`])}, ` +
          `MAE ${num(m[`${split}/mae`])}, R² ${num(m[`${split}/r2`])}.`}) : null));
    },
  };

  KINDS.segments = {
    build(example) { return buildRecordForm(this, example); },
    request: recordRequest,
    render(response) {
      const p = response.predictions[0];
      const rates = Object.keys(p).filter((k) => k.endsWith('_rate'));
      result.append(el('div', {class: 'card prediction'},
        el('p', {class: 'big'}, 'Segment: ', el('span', {class: 'label', text: p.segment < 0 ? 'noise (-1)' : String(p.segment)})),
        table([['segment', (r) => r.segment, 'num'], ['distance', (r) => r.distance, 'num'],
          ['share of the data', (r) => pct(r.segment_share), 'num'], ...rates.map((k) => [k.replace(/_/g, ' '), (r) => pct(r[k]), 'num'])], [p])));
      const all = this.meta && this.meta.segments;
      if (all) {
        const keys = [...new Set(Object.values(all).flatMap((s) => Object.keys(s)))];
        result.append(el('h2', {text: 'All segments'}), table(
          [['segment', (r) => r[0]], ...keys.map((k) => [k.replace(/_/g, ' '), (r) => pct(r[1][k]), 'num'])],
          Object.entries(all), {highlight: (r) => r[0] === String(p.segment) || (p.segment < 0 && r[0] === 'noise')}));
      }
    },
  };

  KINDS.rules = {
    async build(example) {
      this.meta = await metadata();
      const items = (this.meta && this.meta.items) || [];
      this.basket = [...((example.instances || [{items: []}])[0].items || [])];
      const input = el('input', {id: 'item', type: 'text', list: 'known-items', placeholder: 'an item, e.g. ' + (items[0] || 'milk')});
      const add = () => { const v = input.value.trim(); if (v && !this.basket.includes(v)) this.basket.push(v); input.value = ''; this.chips(); };
      input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } });
      form.append(el('label', {for: 'item', text: 'Basket'}), el('div', {id: 'chips', class: 'chips'}),
        el('div', {class: 'row'}, input, el('button', {type: 'button', onclick: add}, 'Add')),
        el('datalist', {id: 'known-items'}, items.map((i) => el('option', {value: i}))),
        el('div', {class: 'grid'},
          el('div', null, el('label', {for: 'top_k', text: 'Recommendations'}), el('input', {id: 'top_k', type: 'number', min: 1, max: 100, value: example.top_k || 5})),
          el('div', null, el('label', {for: 'rank_by', text: 'Rank by'}), el('select', {id: 'rank_by'},
            ['confidence', 'lift'].map((r) => el('option', {value: r, text: r, selected: r === example.rank_by}))))),
        el('label', {class: 'inline'}, el('input', {type: 'checkbox', id: 'fill', checked: true}), 'Blend with popular items'));
      this.chips();
    },
    chips() {
      $('chips').replaceChildren(...this.basket.map((item, i) => el('span', {class: 'chip'}, item,
        el('button', {type: 'button', title: 'remove', onclick: () => { this.basket.splice(i, 1); this.chips(); }}, '×'))));
    },
    request() {
      return {json: {instances: [{items: this.basket.slice()}], top_k: Number($('top_k').value),
        rank_by: $('rank_by').value, fill_popular: $('fill').checked}};
    },
    render(response, request) {
      const p = response.predictions[0];
      const rankBy = request.json.rank_by;
      const joined = (v) => (Array.isArray(v) ? v.join(' + ') : v);
      if (p.unknown_items && p.unknown_items.length) {
        result.append(el('p', {class: 'note', text: `Not in the model's data (ignored): ${p.unknown_items.join(', ')}`}));
      }
      result.append(el('h2', {text: 'Recommended'}), p.recommendations.length
        ? table([['#', (r, i) => i + 1, 'num'], ['item', (r) => r.item], [rankBy, (r) => r[rankBy], 'num'],
          ['because the basket has', (r) => (r.because === 'popular' ? 'popular item (no rule)' : joined(r.because))]], p.recommendations, {class: 'recommendations'})
        : el('p', {class: 'muted', text: 'No rule fires for this basket.'}));
      const metrics = ['support', 'confidence', 'lift', 'leverage', 'conviction'].filter((m) => p.rules.some((r) => m in r));
      if (p.rules.length) {
        result.append(el('h2', {text: 'Rules that fired'}), table(
          [['if the basket has', (r) => joined(r.antecedents)], ['then also', (r) => joined(r.consequents)],
            ...metrics.map((m) => [m, (r) => r[m], 'num'])], p.rules, {class: 'rules'}));
      }
    },
  };

  KINDS.recommend = {
    build(example) {
      (example.instances || [{user: ''}]).forEach((inst, i) => {
        const byUser = inst.user !== undefined;
        const ids = (inst.items || []).join(', ');
        form.append(el('fieldset', {class: 'query', 'data-numeric': String(typeof (inst.user ?? (inst.items || [])[0]) === 'number')},
          el('legend', {text: `Query ${i + 1}`}),
          el('label', {class: 'inline'}, el('input', {type: 'radio', name: `mode${i}`, value: 'user', checked: byUser}), 'a user'),
          el('label', {class: 'inline'}, el('input', {type: 'radio', name: `mode${i}`, value: 'items', checked: !byUser}), 'recent items'),
          el('div', {class: 'grid'},
            el('div', null, el('label', {for: `user${i}`, text: 'User id'}), el('input', {id: `user${i}`, class: 'user', type: 'text', value: byUser ? String(inst.user) : ''})),
            el('div', null, el('label', {for: `items${i}`, text: 'Item ids, oldest first'}), el('input', {id: `items${i}`, class: 'items', type: 'text', value: ids})),
            el('div', null, el('label', {for: `k${i}`, text: 'How many'}), el('input', {id: `k${i}`, class: 'k', type: 'number', min: 1, value: inst.k || 10}))),
          el('label', {class: 'inline'}, el('input', {type: 'checkbox', class: 'exclude', checked: inst.exclude_seen !== false}), 'leave out what was seen')));
      });
    },
    request() {
      const id = (s, numeric) => (numeric && /^-?\d+$/.test(s) ? Number(s) : s);
      return {json: {instances: [...form.querySelectorAll('.query')].map((f) => {
        const numeric = f.dataset.numeric === 'true';
        const base = {k: Number(f.querySelector('.k').value), exclude_seen: f.querySelector('.exclude').checked};
        if (f.querySelector('input[value=user]').checked) return {user: id(f.querySelector('.user').value.trim(), numeric), ...base};
        return {items: f.querySelector('.items').value.split(/[,\s]+/).filter(Boolean).map((s) => id(s, numeric)), ...base};
      })}};
    },
    render(response, request) {
      response.predictions.forEach((p, i) => {
        const q = request.json.instances[i];
        const who = q.user !== undefined ? `user ${q.user}` : `a session of ${q.items.length} item(s)`;
        const because = p.fallback
          ? el('p', {class: 'note reason'}, 'The most popular items, because: ', el('strong', {text: p.fallback_reason}))
          : el('p', {class: 'reason muted', text: q.user !== undefined ? `Because of user ${q.user}'s history in the run's data.`
            : `Because of the items ${q.items.join(', ')} (most recent last).`});
        result.append(el('div', {class: 'card prediction'}, el('h3', {text: `For ${who} (model ${response.model})`}), because,
          p.unknown_items ? el('p', {class: 'note', text: `Unknown item ids (skipped): ${p.unknown_items.join(', ')}`}) : null,
          el('ol', {class: 'recs'}, p.items.map((r) => el('li', null, el('span', {class: 'title', text: r.title || `item ${r.item}`}),
            el('span', {class: 'muted', text: ` · id ${r.item} · score ${num(r.score)}`}))))));
      });
    },
  };

  KINDS['image-classify'] = {
    build() { form.append(imagePicker()); if (CONFIG.example_image) return useExample(); },
    request() { return imageRequest(); },
    async render(response, request) {
      response.predictions.forEach((p, i) => {
        const top = (p.top && p.top.length ? p.top : [p]).map((t) => [t.label, t.probability]);
        result.append(el('div', {class: 'card prediction side'},
          el('div', {class: 'view'}, el('img', {src: request.images[i].url, alt: request.images[i].name})),
          el('div', null, el('h3', {text: request.images[i].name}), el('p', {class: 'big'}, 'Label: ',
            el('span', {class: 'label', text: p.label})), bars(top))));
      });
    },
  };

  KINDS['image-detect'] = {
    build(example) {
      form.append(imagePicker(), el('div', {class: 'grid'},
        el('div', null, el('label', {for: 'score', text: 'Score threshold'}),
          el('input', {id: 'score', type: 'number', min: 0, max: 1, step: 0.05, value: example.score_threshold ?? 0.3})),
        el('div', null, el('label', {for: 'max_det', text: 'At most, per image'}),
          el('input', {id: 'max_det', type: 'number', min: 1, max: 1000, value: example.max_detections ?? 100}))));
      if (CONFIG.example_image) return useExample();
    },
    request() { return imageRequest({score_threshold: $('score').value, max_detections: $('max_det').value}); },
    render(response, request) {
      const names = [...new Set(response.predictions.flatMap((p) => p.detections.map((d) => d.label)))].sort();
      const color = colorOf(names);
      response.predictions.forEach((p, i) => {
        // boxes in the image's own pixels (an SVG whose viewBox is the image), labels in screen pixels
        const overlay = svg('svg', {viewBox: `0 0 ${p.width} ${p.height}`, preserveAspectRatio: 'none', class: 'boxes'});
        const labels = [];
        const at = (v, size) => `${(100 * v) / size}%`;
        for (const d of p.detections) {
          const [x1, y1, x2, y2] = d.box;
          const g = svg('g', {class: 'detection', 'data-label': d.label});
          g.append(svg('rect', {class: 'box', x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: color(d.label)}));
          overlay.append(g);
          // above the box, or inside it where the box touches the image's top
          labels.push(el('span', {class: 'box-label' + (y1 < 0.1 * p.height ? ' inside' : ''), text: `${d.label} ${pct(d.score)}`,
            style: `left:${at(x1, p.width)};top:${at(y1, p.height)};background:${color(d.label)}`}));
        }
        result.append(el('div', {class: 'card prediction side'},
          el('div', {class: 'view'}, el('img', {src: request.images[i].url, alt: request.images[i].name}), overlay, labels),
          el('div', null, el('h3', {text: request.images[i].name}),
            el('p', {class: 'big', text: `${p.detections.length} detection(s)`}),
            legend(names.filter((n) => p.detections.some((d) => d.label === n)).map((n) => [n, color(n)])),
            p.detections.length ? table([['label', (d) => d.label], ['score', (d) => pct(d.score), 'num'],
              ['box (x1, y1, x2, y2)', (d) => d.box.map((v) => Math.round(v)).join(', '), 'num']], p.detections) : null)));
      });
    },
  };

  // the colours of a palette PNG (its PLTE chunk): class id i is drawn in palette[i]
  function pngPalette(b64) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    let at = 8;
    while (at + 8 <= bytes.length) {
      const len = (bytes[at] << 24 | bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3]) >>> 0;
      const type = String.fromCharCode(...bytes.slice(at + 4, at + 8));
      if (type === 'PLTE') {
        const out = [];
        for (let i = 0; i + 2 < len; i += 3) out.push([bytes[at + 8 + i], bytes[at + 9 + i], bytes[at + 10 + i]]);
        return out;
      }
      at += 12 + len;
    }
    return null;
  }

  KINDS['image-segment'] = {
    build() {
      form.append(imagePicker());
      if (CONFIG.example_image) return useExample();
    },
    request() { return imageRequest(); },
    async render(response, request) {
      const opacity = el('input', {id: 'opacity', type: 'range', min: 0, max: 1, step: 0.05, value: 0.6});
      result.append(el('div', {class: 'panel'}, el('label', {for: 'opacity', text: 'Mask opacity'}), opacity,
        el('p', {class: 'hint', text: 'Class 0 (the first in the legend) is left unpainted.'})));
      const views = [];
      for (const [i, p] of response.predictions.entries()) {
        const classes = Object.keys(p.fractions);
        const palette = (pngPalette(p.mask_png_base64) || []).slice(0, classes.length);
        const rgb = (k) => palette[k] || [128, 128, 128];
        const [image, mask] = await Promise.all([loadImage(request.images[i].url),
          loadImage('data:image/png;base64,' + p.mask_png_base64)]);
        const overlay = maskOverlay(mask, p.width, p.height, palette);
        const canvas = el('canvas', {width: p.width, height: p.height, class: 'segmented', 'data-painted': overlay.painted});
        views.push(() => {
          const ctx = canvas.getContext('2d');
          ctx.clearRect(0, 0, p.width, p.height);
          ctx.globalAlpha = 1;
          ctx.drawImage(image, 0, 0, p.width, p.height);
          ctx.globalAlpha = Number(opacity.value);
          ctx.drawImage(overlay.canvas, 0, 0);
          ctx.globalAlpha = 1;
        });
        result.append(el('div', {class: 'card prediction side'}, el('div', {class: 'view'}, canvas),
          el('div', null, el('h3', {text: request.images[i].name}),
            legend(classes.map((c, k) => [c, `rgb(${rgb(k).join(',')})`, pct(p.fractions[c])])))));
      }
      const redraw = () => views.forEach((draw) => draw());
      opacity.addEventListener('input', redraw);
      redraw();
    },
  };

  // the mask's pixels recoloured from the palette, class 0 transparent; painted = pixels drawn
  function maskOverlay(mask, width, height, palette) {
    const canvas = document.createElement('canvas');
    canvas.width = width; canvas.height = height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(mask, 0, 0);
    const data = ctx.getImageData(0, 0, width, height);
    const px = data.data;
    let painted = 0;
    for (let o = 0; o < px.length; o += 4) {
      let best = 0, bestDist = Infinity;
      palette.forEach(([r, g, b], k) => {
        const d = (px[o] - r) ** 2 + (px[o + 1] - g) ** 2 + (px[o + 2] - b) ** 2;
        if (d < bestDist) { bestDist = d; best = k; }
      });
      if (best === 0) px[o + 3] = 0;
      else { [px[o], px[o + 1], px[o + 2]] = palette[best]; px[o + 3] = 255; painted += 1; }
    }
    ctx.putImageData(data, 0, 0);
    return {canvas, painted};
  }

  // ------------------------------------------------------------------ the page's life
  const kind = KINDS[CONFIG.kind] || KINDS.json;

  async function predict() {
    clearError();
    document.body.dataset.state = 'busy';
    const button = $('predict');
    let request;
    try { request = kind.request(); } catch (e) { showError(e); document.body.dataset.state = 'error'; return; }
    button.disabled = true; $('busy').hidden = false;
    $('raw-request').textContent = shorten(request.shown || request.json);
    try {
      const init = request.form ? {method: 'POST', body: request.form}
        : {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(request.json)};
      const response = await api('/predict', init);
      $('raw-response').textContent = shorten(response);
      result.replaceChildren(el('h2', {text: 'Result'}));
      await kind.render(response, request);
      document.body.dataset.state = 'done';
    } catch (e) {
      $('raw-response').textContent = e.message;
      result.replaceChildren();
      showError(e);
      document.body.dataset.state = 'error';
    } finally {
      button.disabled = false; $('busy').hidden = true;
    }
  }

  async function waitUntilReady() {
    const status = $('status');
    status.hidden = false;
    status.textContent = 'The model is loading; this page reloads when it is ready…';
    $('predict').disabled = true;
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const r = await fetch('/readyz');
        if (r.ok) { location.reload(); return; }
        const body = await r.json().catch(() => ({}));
        if (body.error && body.error.includes('failed')) { status.textContent = body.error; return; }
      } catch (e) { status.textContent = 'The server does not answer; retrying…'; }
    }
  }

  let building = null;
  async function start() {
    if (building) return building;
    building = (async () => {
      form.replaceChildren();
      picked.length = 0;
      try { await kind.build(CONFIG.example || {}); } catch (e) { showError(e); }
      document.body.dataset.state = 'ready';
    })().finally(() => { building = null; });
    return building;
  }

  $('predict').addEventListener('click', predict);
  form.addEventListener('submit', (e) => { e.preventDefault(); predict(); });
  if (CONFIG.auth) showAuth(false);
  if (!CONFIG.ready) waitUntilReady(); else start();
})();
