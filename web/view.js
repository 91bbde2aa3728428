/* kinsync view: the page. State arrives as Server-Sent Events (/api/events): "state" (the whole
 * state as JSON), "preview" (new JPEGs of one frame set), "cloud" (a new point cloud), "log".
 * Control requests are POSTs carrying the token of the address kinsync printed (?token=...). */
'use strict';
(function () {
  const PALETTE = ['#4ea8ff', '#ff9f43', '#5cd87a', '#f26d8f', '#b48cff', '#f5d74a', '#45d6d0', '#e0e0e0'];
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token') || '';
  const ks = window.ksView = { state: null, previewSeq: 0, previewsLoaded: 0, points: 0, cloudSeq: 0,
    events: 0, latencyMs: [], webgl: false, errors: [] };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }
  function fmt(x, digits, unit) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    return Number(x).toFixed(digits) + (unit ? ' ' + unit : '');
  }

  /* ---- controls ---- */
  async function control(action, params) {
    const q = params ? '?' + new URLSearchParams(params).toString() : '';
    try {
      const r = await fetch('/api/control/' + action + q, { method: 'POST', headers: { 'X-Kinsync-Token': token } });
      if (!r.ok) {
        const j = await r.json().catch(() => ({ error: r.statusText }));
        showMessage(action + ': ' + (j.error || r.status));
      }
    } catch (e) { showMessage(action + ': ' + e); }
  }
  function showMessage(text) {
    const m = $('message');
    m.textContent = text;
    m.classList.toggle('hidden', !text);
  }
  $('btn-start').onclick = () => control('start');
  $('btn-stop').onclick = () => control('stop');
  /* over recordings: the time slider seeks every recording (on release) and pauses there */
  let seeking = false;
  $('seek').oninput = () => { seeking = true; $('seekpos').textContent = fmt(Number($('seek').value), 2, 's'); };
  $('seek').onchange = () => { seeking = false; control('seek', { t: $('seek').value }); };
  $('btn-record').onclick = () => control('record', { name: $('take-name').value.trim(), seconds: $('take-seconds').value.trim() });

  /* ---- rendering the state ---- */
  function renderDevices(s) {
    const tb = $('devices').tBodies[0];
    tb.replaceChildren();
    for (const d of s.devices) {
      const j = d.jacks;
      const jack = (have, want) => {
        if (!j.known) return el('span', { class: 'dim', text: '?' });
        const ok = have === want;
        return el('span', { class: ok ? 'jack-ok' : 'jack-bad', title: (have ? 'plugged' : 'empty') + (ok ? '' : ' (wiring says ' + (want ? 'plugged' : 'empty') + ')'), text: have ? '●' : '○' });
      };
      const drops = d.queue_drops === undefined ? '–' : d.queue_drops + ' / ' + d.missing;
      const tr = el('tr', { 'data-device': d.name, 'data-state': d.state },
        el('td', {}, el('b', { text: d.name })),
        el('td', { text: d.role + (d.sync_mode ? ' · ' + d.sync_mode.toLowerCase() : '') }),
        el('td', { text: d.host }),
        el('td', { class: 'mono', text: d.serial }),
        el('td', { class: 'mono', text: d.firmware || '–' }),
        el('td', {}, jack(j.sync_in, j.expect_in), ' / ', jack(j.sync_out, j.expect_out)),
        el('td', {}, el('span', { class: 'badge st-' + d.state, text: d.state === 'armed' ? 'armed · waiting' : d.state })),
        el('td', { text: fmt(d.fps, 1) }),
        el('td', { text: drops }));
      tb.append(tr);
    }
    const seq = $('sequence');
    seq.replaceChildren();
    for (const e of s.sequence || []) {
      seq.append(el('li', {}, el('span', { class: 't', text: e.t_ms < 1000 ? '+' + fmt(e.t_ms, 1) + ' ms' : '+' + fmt(e.t_ms / 1000, 1) + ' s' }),
        el('b', { text: e.device }), ' (' + e.role + ') ' + e.event));
    }
    if (!(s.sequence || []).length) seq.append(el('li', { class: 'dim', text: 'not started' }));
  }

  function renderChecks(s) {
    const ul = $('checks');
    ul.replaceChildren();
    const v = s.verify;
    const verdict = $('verdict');
    if (!v) {
      ul.append(el('li', { class: 'dim note', text: s.distributed ? 'over agents the frames stay on the hosts: kinsync verify --distributed proves sync from the gathered recordings' : 'measuring…' }));
      verdict.textContent = ''; verdict.className = 'badge hidden';
      return;
    }
    let fails = 0, warns = 0;
    for (const c of v.checks) {
      if (c.status === 'FAIL') fails++;
      if (c.status === 'WARN') warns++;
      const who = c.device ? ' · ' + c.device + (c.other ? ' / ' + c.other : '') : '';
      ul.append(el('li', { 'data-check': c.id, 'data-status': c.status },
        el('span', { class: 'badge s-' + c.status, text: c.status }),
        el('span', { class: 'id', text: c.id + who }),
        el('span', { class: 'msg', text: c.message })));
    }
    /* as verify's result: a WARN passes, but the badge says so rather than "all PASS" */
    verdict.textContent = fails ? fails + ' FAIL' : warns ? 'PASS, ' + warns + ' WARN' : 'all PASS';
    verdict.className = 'badge ' + (fails ? 's-FAIL' : warns ? 's-WARN' : 's-PASS');
    verdict.id = 'verdict';
    const tb = $('sync').tBodies[0];
    tb.replaceChildren();
    for (const d of v.devices) {
      const fit = d.host_clock_fit || {};
      tb.append(el('tr', {}, el('td', { text: d.name + (d.name === v.reference ? ' (master)' : '') }),
        el('td', { text: fmt(d.skew_p99_abs_us, 1, 'µs') }), el('td', { text: fmt(d.drift_vs_reference_ppm, 2, 'ppm') }),
        el('td', { text: fit.ok ? fmt(fit.rate_ppm !== undefined ? fit.rate_ppm : (fit.rate / 1000 - 1) * 1e6, 1, 'ppm') : '–' }),
        el('td', { text: d.missing }), el('td', { text: d.gaps })));
    }
  }

  function renderSkew(s) {
    const W = 600, H = 180, L = 46, B = 18, T = 8;
    const sk = s.skew;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.append(e); return e;
    };
    const target = s.target_us || 160;
    let ymax = target * 1.5;
    for (const series of sk.abs_max_us) for (const y of series) if (y !== null && y > ymax) ymax = y;
    const t = sk.t;
    const t0 = t.length ? t[0] : 0, t1 = t.length > 1 ? t[t.length - 1] : t0 + 1;
    const X = (x) => L + (W - L - 6) * (x - t0) / Math.max(1e-6, t1 - t0);
    const Y = (y) => T + (H - T - B) * (1 - y / ymax);
    for (let k = 0; k <= 4; k++) {
      const y = ymax * k / 4;
      add('line', { x1: L, x2: W - 6, y1: Y(y), y2: Y(y), stroke: '#26313d', 'stroke-width': 1 });
      add('text', { x: L - 4, y: Y(y) + 3, 'text-anchor': 'end' }, y >= 1000 ? (y / 1000).toFixed(1) + ' ms' : y.toFixed(0) + ' µs');
    }
    add('line', { x1: L, x2: W - 6, y1: Y(target), y2: Y(target), stroke: '#e3a52d', 'stroke-dasharray': '4 3', 'stroke-width': 1 });
    add('text', { x: W - 8, y: Y(target) - 3, 'text-anchor': 'end', fill: '#e3a52d' }, 'target ' + target + ' µs');
    add('text', { x: L, y: H - 4 }, t.length ? fmt(t0, 0) + ' s' : 'waiting for frame sets');
    if (t.length) add('text', { x: W - 6, y: H - 4, 'text-anchor': 'end' }, fmt(t1, 0) + ' s');
    sk.abs_max_us.forEach((series, d) => {
      let path = '';
      series.forEach((y, i) => { if (y !== null) path += (path ? ' L' : 'M') + X(t[i]).toFixed(1) + ' ' + Y(y).toFixed(1); });
      if (path) add('path', { d: path, fill: 'none', stroke: PALETTE[d % PALETTE.length], 'stroke-width': 1.5 });
    });
    $('skewchart').replaceChildren(svg);
  }

  let previewRows = '';
  /* The laser timeline: each device's pulses as planned (outline) and as measured from the frames
   * (filled, verify's laser_start_us), relative to the master's colour timestamp, the plan placed on
   * the master's measured train, each measured train drawn in the frame period nearest its planned
   * one, over the span the pulses occupy. */
  function renderLaser(s) {
    const box = $('laserchart');
    const lz = s.laser;
    if (!lz) { box.replaceChildren(el('p', { class: 'dim', text: 'no laser in this depth mode' })); return; }
    const P = lz.period_us, measured = {}, v = s.verify || {};
    for (const d of v.devices || []) measured[d.name] = d.laser_start_us;
    /* the plan placed on the master's measured train (see cmd_view.c): only relative positions are planned */
    const master = lz.devices.find((d) => d.name === v.reference);
    const mm = master ? measured[master.name] : undefined;
    const shift = (master && master.planned_us !== null && mm !== null && mm !== undefined && isFinite(mm)) ? mm - master.planned_us : 0;

    /* a measured start is drawn in the period that puts it nearest its planned start */
    const near = (t, ref) => (t === null || t === undefined || ref === null || ref === undefined) ? t
      : ref + ((((t - ref) % P) + P * 1.5) % P) - P / 2;
    const rows = lz.devices.map((d) => {
      const plan = d.planned_us === null ? null : d.planned_us + shift;
      return { name: d.name, plan, meas: near(measured[d.name], plan) };
    });
    let lo = Infinity, hi = -Infinity;
    const train = lz.pulses > 0 ? (lz.pulses - 1) * lz.pitch_us + lz.pulse_width_us : 0;
    for (const r of rows) for (const t of [r.plan, r.meas]) if (t !== null && t !== undefined && isFinite(t)) {
      lo = Math.min(lo, t); hi = Math.max(hi, t + train);
    }
    if (!isFinite(lo)) { lo = 0; hi = P; }
    const pad = Math.max(200, (hi - lo) * 0.05);
    lo -= pad; hi += pad;
    const W = 600, L = 90, R = 6, RH = 22, H = rows.length * RH + 34;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.append(e); return e;
    };
    const X = (t) => L + (W - L - R) * (t - lo) / Math.max(1, hi - lo);
    const pulses = (start, y, h, attrs) => {
      for (let k = 0; k < lz.pulses; k++) {
        const t = start + k * lz.pitch_us;
        add('rect', Object.assign({ x: X(t).toFixed(1), y, width: Math.max(1, X(t + lz.pulse_width_us) - X(t)).toFixed(1), height: h }, attrs));
      }
    };
    rows.forEach((r, i) => {
      const si = s.skew && s.skew.devices ? s.skew.devices.indexOf(r.name) : -1; /* the session's colours */
      const y = 4 + i * RH, c = PALETTE[(si >= 0 ? si : i) % PALETTE.length];
      add('text', { x: 2, y: y + 13 }, r.name);
      if (r.plan !== null && r.plan !== undefined) pulses(r.plan, y, 7, { fill: 'none', stroke: c, 'stroke-width': 1, class: 'planned' });
      if (r.meas !== null && r.meas !== undefined && isFinite(r.meas)) pulses(r.meas, y + 9, 7, { fill: c, class: 'measured' });
    });
    add('text', { x: L, y: H - 16 }, fmt(lo, 0) + ' µs');
    add('text', { x: W - R, y: H - 16, 'text-anchor': 'end' }, fmt(hi, 0) + ' µs');
    add('text', { x: L, y: H - 3 }, 'from the master\'s colour timestamp · upper: planned (placed on the master\'s measured train) · lower: measured');
    box.replaceChildren(svg);
  }

  function renderPreviewGrid(s) {
    /* over agents (--distributed) only the colour thumbnails the agents publish */
    const kinds = s.preview_kinds || ['color', 'depth', 'ir'];
    const key = kinds.join('+') + ';' + s.devices.map((d) => d.name + ':' + d.index).join(',');
    if (key === previewRows) return;
    previewRows = key;
    const g = $('previews');
    const titles = { color: s.distributed ? 'colour (the agent\'s thumbnail, ~1/s)' : 'colour', depth: 'depth (0.5–4.5 m)', ir: 'IR' };
    g.style.gridTemplateColumns = `86px repeat(${kinds.length}, minmax(0, ${kinds.length < 3 ? '260px' : '1fr'}))`;
    g.replaceChildren(el('div'), ...kinds.map((k) => el('div', { class: 'col', text: titles[k] })));
    for (const d of s.devices) {
      if (d.index < 0) continue;
      g.append(el('div', { class: 'dev' }, d.name, el('span', { class: 'dim', text: d.role + (s.distributed ? ' @ ' + d.host : '') })));
      for (const kind of kinds) {
        const img = el('img', { alt: d.name + ' ' + kind, 'data-device': d.index, 'data-kind': kind });
        img.onload = () => { ks.previewsLoaded++; img.dataset.loaded = img.naturalWidth + 'x' + img.naturalHeight; };
        g.append(img);
      }
    }
    if (ks.lastPreviewSeq) loadPreviews(ks.lastPreviewSeq); /* the new grid at once, not at the next preview */
  }

  function renderTakes(s) {
    const r = s.record;
    $('recording').textContent = r.active ? `recording ${r.name}: ${r.sets} frame sets of ${fmt(r.seconds, 1)} s…` : '';
    const ul = $('takes');
    ul.replaceChildren();
    for (const t of r.takes) {
      const files = el('div', { class: 'files' });
      for (const f of t.files) files.append(el('div', { text: (f.complete ? '✓ ' : '✗ ') + f.path + '  ' + (f.bytes / 1e6).toFixed(1) + ' MB, ' + f.captures + ' captures' }));
      ul.append(el('li', { 'data-take': t.name, 'data-complete': t.complete }, el('b', { text: t.name }), ' ',
        el('span', { class: 'badge ' + (t.complete ? 's-PASS' : 's-FAIL'), text: t.complete ? 'complete' : 'failed' }), files));
    }
    if (!r.takes.length && !r.active) ul.append(el('li', { class: 'dim', text: 'no take yet' }));
  }

  function render(s) {
    ks.state = s;
    $('rig').textContent = s.rig;
    const rs = $('runstate');
    rs.textContent = s.run.state;
    rs.className = 'badge st-' + s.run.state;
    $('runinfo').textContent = `${s.devices.length} devices · ${s.simulated ? 'simulated' : s.playback ? 'recordings' : s.distributed ? 'over the hosts\' agents' : s.backend}` +
      (s.run.state === 'running' ? ` · ${fmt(s.run.seconds, 0)} s` + (s.distributed ? '' : ` · ${s.run.sets} frame sets`) : '');
    if (s.run.message) showMessage(s.run.message);
    const ro = !token;
    const running = s.run.state === 'running';
    $('btn-start').disabled = ro || running || s.run.state === 'starting';
    $('btn-stop').disabled = ro || !running;
    const can = (a) => !s.controls || s.controls.includes(a);
    const slider = s.playback && can('seek');
    $('takebox').classList.toggle('hidden', slider);
    $('seekbox').classList.toggle('hidden', !slider);
    $('btn-start').textContent = s.playback ? 'Play' : 'Start';
    $('btn-stop').textContent = s.playback ? 'Pause' : 'Stop';
    if (slider) {
      const sk = $('seek');
      sk.max = s.duration_s || 1;
      sk.disabled = ro;
      if (!seeking && s.position_s !== null && s.position_s !== undefined) {
        sk.value = s.position_s;
        $('seekpos').textContent = fmt(s.position_s, 2, 's') + ' / ' + fmt(s.duration_s, 1, 's');
      }
    }
    $('btn-record').disabled = ro || !running || s.record.active || !can('record');
    $('ctl-note').textContent = ro ? 'read-only: open the address with ?token= that kinsync printed'
      : s.distributed ? 'over agents: no takes from the page (kinsync record --distributed gathers them)'
      : s.playback && s.run.state === 'paused' ? 'paused: Play continues from here' : '';
    renderDevices(s);
    renderChecks(s);
    renderSkew(s);
    renderLaser(s);
    renderPreviewGrid(s);
    renderTakes(s);
    if (s.distributed) $('cloud-msg').textContent = 'no point cloud over agents: the depth frames stay on the hosts';
    $('preview-info').textContent = `${s.view.previews} ${s.distributed ? 'thumbnail batches' : 'frame sets previewed'}` + (s.view.previews_skipped ? `, ${s.view.previews_skipped} skipped` : '');
    const leg = $('legend');
    leg.replaceChildren();
    s.devices.forEach((d) => { if (d.index >= 0) leg.append(el('span', {}, el('i', { style: 'background:' + PALETTE[d.index % PALETTE.length] }), d.name)); });
  }

  /* ---- 3D ---- */
  let three = null;
  function initThree() {
    const box = $('cloud3d');
    if (!window.THREE) { $('cloud-msg').textContent = '3D view unavailable: libjs-three is not installed (apt-get install libjs-three)'; return; }
    try {
      const renderer = new THREE.WebGLRenderer({ antialias: false });
      renderer.setPixelRatio(window.devicePixelRatio || 1);
      renderer.setSize(box.clientWidth, box.clientHeight);
      renderer.setClearColor(0x05080b);
      box.append(renderer.domElement);
      const scene = new THREE.Scene();
      const camera = new THREE.PerspectiveCamera(55, box.clientWidth / box.clientHeight, 0.01, 100);
      camera.up.set(0, -1, 0); /* camera frames: y points down */
      camera.position.set(0, -1.2, -2.5);
      const controls = new THREE.OrbitControls(camera, renderer.domElement);
      controls.target.set(0, 0, 2);
      controls.update();
      const geom = new THREE.BufferGeometry();
      const mat = new THREE.PointsMaterial({ size: 2, sizeAttenuation: false, vertexColors: THREE.VertexColors });
      const pts = new THREE.Points(geom, mat);
      scene.add(pts);
      scene.add(new THREE.AxesHelper(0.3));
      three = { renderer, scene, camera, controls, geom, fitted: false };
      ks.webgl = true;
      /* draw only when something changed: a still page costs no CPU */
      three.draw = () => { if (!three.pending) { three.pending = true; requestAnimationFrame(() => { three.pending = false; renderer.render(scene, camera); }); } };
      controls.addEventListener('change', three.draw);
      three.draw();
      window.addEventListener('resize', () => {
        renderer.setSize(box.clientWidth, box.clientHeight);
        camera.aspect = box.clientWidth / box.clientHeight; camera.updateProjectionMatrix(); three.draw();
      });
    } catch (e) {
      $('cloud-msg').textContent = '3D view unavailable: ' + e.message;
      ks.errors.push(String(e));
    }
  }

  let cloudBusy = false, cloudLast = 0;
  async function loadCloud(seq) {
    /* one at a time and at most two per second: a slow page skips clouds */
    if (cloudBusy || performance.now() - cloudLast < 500) return;
    cloudBusy = true;
    cloudLast = performance.now();
    try {
      const r = await fetch('/api/cloud.bin?s=' + seq);
      if (!r.ok) return;
      const buf = await r.arrayBuffer();
      const head = new Uint32Array(buf, 0, 4);
      const n = head[1];
      const xyz = new Float32Array(buf, 16, n * 3);
      const rgb = new Uint8Array(buf, 16 + n * 12, n * 3);
      ks.points = n;
      ks.cloudSeq = seq;
      const calibrated = (head[3] & 1) !== 0, cameraColor = (head[3] & 2) !== 0;
      ks.cloudCameraColor = cameraColor;
      $('cloud-info').textContent = `${n.toLocaleString()} points · ` + (calibrated ? 'rig frame (calibrated)' : 'uncalibrated: each device in its own camera frame, side by side') +
        ' · ' + (cameraColor ? 'colours from the colour cameras' : 'one colour per device') +
        (ks.state && ks.state.view && ks.state.view.clouds_per_second ? ` · ${ks.state.view.clouds_per_second} clouds/s` : '');
      if (!three) return;
      three.geom.setAttribute('position', new THREE.BufferAttribute(xyz.slice(), 3));
      three.geom.setAttribute('color', new THREE.BufferAttribute(rgb.slice(), 3, true));
      three.geom.setDrawRange(0, n);
      three.geom.computeBoundingSphere();
      ks.drawn = n;
      if (!three.fitted && n > 0) {
        const c = three.geom.boundingSphere.center, rad = three.geom.boundingSphere.radius;
        three.controls.target.copy(c);
        three.camera.position.set(c.x, c.y - rad * 0.6, c.z - rad * 1.8);
        three.controls.update();
        three.fitted = true;
      }
      three.draw();
    } catch (e) { ks.errors.push(String(e)); } finally { cloudBusy = false; }
  }

  /* ---- previews: fetched as blobs and swapped in when all arrived (no flicker); while a set is
   * still loading, newer sets are skipped: a slow page drops previews ---- */
  let previewBusy = false;
  async function loadPreviews(seq) {
    if (previewBusy) return;
    previewBusy = true;
    try {
      const imgs = [...document.querySelectorAll('#previews img')];
      const blobs = await Promise.all(imgs.map(async (img) => {
        const r = await fetch(`/api/preview/${img.dataset.device}/${img.dataset.kind}.jpg?s=${seq}`);
        return r.ok ? r.blob() : null;
      }));
      imgs.forEach((img, i) => {
        if (!blobs[i]) return;
        const old = img.src;
        img.src = URL.createObjectURL(blobs[i]);
        if (old.startsWith('blob:')) URL.revokeObjectURL(old);
      });
      ks.previewSeq = seq;
    } catch (x) { ks.errors.push(String(x)); } finally { previewBusy = false; }
  }

  /* ---- events ---- */
  function connect() {
    const es = new EventSource('/api/events');
    es.addEventListener('state', (e) => { ks.events++; try { render(JSON.parse(e.data)); } catch (x) { ks.errors.push(String(x)); } });
    es.addEventListener('log', (e) => {
      const ol = $('log');
      ol.append(el('li', { text: new Date().toLocaleTimeString() + '  ' + JSON.parse(e.data) }));
      while (ol.children.length > 200) ol.firstChild.remove();
      ol.scrollTop = ol.scrollHeight;
    });
    es.addEventListener('preview', (e) => { ks.lastPreviewSeq = JSON.parse(e.data).seq; loadPreviews(ks.lastPreviewSeq); });
    es.addEventListener('cloud', (e) => loadCloud(JSON.parse(e.data).seq));
    es.onerror = () => { $('runstate').textContent = 'disconnected'; $('runstate').className = 'badge st-lost'; };
  }
  initThree();
  connect();
})();
