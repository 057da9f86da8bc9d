/// The admin page's script, inline in the page (its hash is in the page's
/// Content-Security-Policy, so it must be exactly this text).
///
/// It polls `GET /v1/node/stats` once a second and charts connections, deliveries and frames
/// in per second (rates from consecutive totals over the node's uptime) and p99 latency; it
/// pages `GET /v1/online` and `GET /v1/channels` (and a channel's members), and sends with
/// `POST /v1/messages`, `/v1/channels/{channel}/messages` and `/v1/broadcasts`. A 401 shows the
/// key form; the key lives in `sessionStorage` (this tab) only.
enum AdminPageScript {
    static let js = #"""

        (function () {
          'use strict';
          const $ = (id) => document.getElementById(id);
          const KEY_ITEM = 'imserver-admin-key';
          const POINTS = 60;
          let key = sessionStorage.getItem(KEY_ITEM) || '';
          let waitingForKey = false, last = null, timer = null;
          const series = { connections: [], deliveries: [], framesIn: [], p99: [] };

          function el(tag, cls, text) {
            const node = document.createElement(tag);
            if (cls) node.className = cls;
            if (text !== undefined) node.textContent = String(text);
            return node;
          }

          class APIError extends Error {
            constructor(status, code, message) { super(message); this.status = status; this.code = code; }
          }

          // Every data call: same origin, the key (when there is one) as a bearer token. With no
          // key configured, the API answers only loopback Host and Origin, which this page sends
          // when opened from 127.0.0.1 or localhost (same origin as the API).
          async function api(method, path, body) {
            const headers = {};
            if (key) headers.Authorization = 'Bearer ' + key;
            if (body !== undefined) headers['Content-Type'] = 'application/json';
            const res = await fetch('/v1/' + path, {
              method, headers, body: body === undefined ? undefined : JSON.stringify(body),
              cache: 'no-store', credentials: 'omit', redirect: 'error' });
            const text = await res.text();
            let json = null;
            try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
            if (!res.ok) {
              const error = json && json.error ? json.error : { code: 'http_' + res.status, message: text || res.statusText };
              if (res.status === 401) askForKey(key ? 'That key was refused: ' + error.message : 'This API needs its key.');
              throw new APIError(res.status, error.code, error.message);
            }
            return json;
          }

          function askForKey(reason) {
            waitingForKey = true;
            $('keyReason').textContent = reason;
            $('keyPanel').classList.remove('hidden');
            $('main').classList.add('hidden');
            $('key').focus();
          }
          $('keyForm').addEventListener('submit', (event) => {
            event.preventDefault();
            key = $('key').value.trim();
            $('key').value = '';
            if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
            waitingForKey = false;
            $('keyPanel').classList.add('hidden');
            $('main').classList.remove('hidden');
            $('forgetKey').classList.toggle('hidden', !key);
            start();
          });
          $('forgetKey').addEventListener('click', () => {
            key = '';
            sessionStorage.removeItem(KEY_ITEM);
            $('forgetKey').classList.add('hidden');
            start();
          });

          function banner(text) {
            $('banner').textContent = text || '';
            $('banner').classList.toggle('hidden', !text);
          }
          function failed(error) {
            if (error instanceof APIError && error.status === 401) return;
            banner(error instanceof APIError ? error.status + ' ' + error.code + ': ' + error.message : 'the API does not answer (' + error.message + ')');
          }

          // Charts: the last POINTS values of a series as a line over a filled area; null is a gap.
          function color(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#4f6cf7'; }
          function draw(canvas, values) {
            const ratio = window.devicePixelRatio || 1, width = canvas.clientWidth, height = canvas.clientHeight;
            if (!width || !height) return;
            if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
            if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
            const ctx = canvas.getContext('2d');
            ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
            ctx.clearRect(0, 0, width, height);
            const numbers = values.filter((v) => v !== null && isFinite(v));
            const top = Math.max(...numbers, 0) || 1;
            const step = width / (POINTS - 1), x = (i) => width - (values.length - 1 - i) * step;
            const y = (v) => height - 2 - (v / top) * (height - 14);
            ctx.strokeStyle = color('--line');
            ctx.beginPath(); ctx.moveTo(0, y(top)); ctx.lineTo(width, y(top)); ctx.stroke();
            ctx.fillStyle = color('--muted');
            ctx.font = '10px system-ui, sans-serif';
            ctx.fillText(format(top), 2, 9);
            ctx.strokeStyle = color('--accent');
            ctx.lineWidth = 1.5;
            let open = false;
            ctx.beginPath();
            values.forEach((v, i) => {
              if (v === null || !isFinite(v)) { open = false; return; }
              if (open) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
              open = true;
            });
            ctx.stroke();
          }
          function format(n) {
            if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
            if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
            return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
          }
          function bytes(n) {
            const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
            let i = 0;
            while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
            return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
          }
          function duration(seconds) {
            const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
            return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + (s % 60) + 's';
          }
          function push(name, value) {
            series[name].push(value);
            if (series[name].length > POINTS) series[name].shift();
            draw($(name + 'Chart'), series[name]);
          }
          const ms = (seconds) => (seconds === null || seconds === undefined ? null : seconds * 1000);
          const codes = (counts) => Object.keys(counts).sort().map((code) => code + ': ' + counts[code]).join(', ') || 'none';

          function show(stats) {
            const up = stats.backplane.status === 'up' && stats.backplane.linked;
            $('node').className = 'pill ' + (up ? 'up' : 'down');
            $('nodeText').textContent = stats.node + ' \u00b7 backplane ' + (stats.backplane.linked ? stats.backplane.detail : 'not linked');
            $('uptime').textContent = 'up ' + duration(stats.uptimeSeconds);
            const t = stats.traffic;
            const elapsed = last ? stats.uptimeSeconds - last.uptimeSeconds : 0;
            const rate = (now, before) => (elapsed > 0 && now >= before ? (now - before) / elapsed : null);
            const deliveries = last ? rate(t.deliveries, last.traffic.deliveries) : null;
            const framesIn = last ? rate(t.framesIn, last.traffic.framesIn) : null;
            $('connections').textContent = String(stats.connections.open);
            $('deliveries').textContent = deliveries === null ? '–' : format(deliveries);
            $('framesIn').textContent = framesIn === null ? '–' : format(framesIn);
            const p99 = ms(stats.latency.p99Seconds);
            $('p99').textContent = p99 === null ? '–' : p99.toFixed(2);
            push('connections', stats.connections.open);
            push('deliveries', deliveries);
            push('framesIn', framesIn);
            push('p99', p99);
            const p50 = ms(stats.latency.p50Seconds);
            const rows = [
              ['handshakes accepted', stats.connections.accepted],
              ['handshakes refused', codes(stats.connections.refused)],
              ['closes by code', codes(stats.connections.closes)],
              ['deliveries', t.deliveries], ['frames out', t.framesOut], ['frames in', t.framesIn],
              ['bytes out', bytes(t.bytesOut)], ['flushes', t.flushes],
              ['latency p50 / p99', p50 === null ? 'no samples' : p50.toFixed(2) + ' / ' + p99.toFixed(2) + ' ms'],
              ['latency window', stats.latency.windowSeconds.toFixed(0) + ' s, ' + stats.latency.samples + ' samples'],
            ];
            const list = $('totals');
            list.textContent = '';
            for (const [name, value] of rows) {
              const row = el('div');
              row.appendChild(el('dt', '', name));
              row.appendChild(el('dd', '', value));
              list.appendChild(row);
            }
            last = stats;
          }

          async function poll() {
            clearTimeout(timer);
            if (waitingForKey) return;
            try {
              show(await api('GET', 'node/stats'));
              banner('');
            } catch (error) {
              failed(error);
            }
            clearTimeout(timer);
            if (!waitingForKey) timer = setTimeout(poll, 1000);
          }

          // A list paged by cursor: asks one row more than it shows, to know whether there is a
          // next page; the cursors of the pages before are kept for Previous. Only the latest
          // load shows (a refresh answered after a click would show the page before).
          function pager(name, fetchPage, render) {
            const state = { cursors: [], after: '', more: false, next: null, ticket: 0 };
            async function load() {
              const size = Number($('pageSize').value), ticket = ++state.ticket;
              const list = $(name);
              try {
                const rows = await fetchPage(state.after, size + 1);
                if (ticket !== state.ticket) return;
                state.more = rows.length > size;
                list.textContent = '';
                for (const row of rows.slice(0, size)) list.appendChild(render(row));
                if (!rows.length) list.appendChild(el('li', 'empty', 'none'));
                state.next = rows.length > size ? rows[size - 1] : null;
              } catch (error) {
                failed(error);
              }
              $(name + 'Page').textContent = 'page ' + (state.cursors.length + 1);
              $(name + 'Prev').disabled = state.cursors.length === 0;
              $(name + 'Next').disabled = !state.more;
            }
            $(name + 'Prev').addEventListener('click', () => { state.after = state.cursors.pop() || ''; load(); });
            $(name + 'Next').addEventListener('click', () => {
              if (!state.next) return;
              state.cursors.push(state.after);
              state.after = cursorOf(state.next);
              load();
            });
            return { load, reset() { state.cursors = []; state.after = ''; return load(); } };
          }
          const cursorOf = (row) => (typeof row === 'string' ? row : row.name);
          const query = (after, limit) => '?limit=' + limit + (after ? '&after=' + encodeURIComponent(after) : '');
          const user = (name) => { const li = el('li'); li.appendChild(el('span', 'grow', name)); return li; };

          const online = pager('online', async (after, limit) => (await api('GET', 'online' + query(after, limit))).clients, user);
          let channel = null;
          const members = pager('members', async (after, limit) =>
            (await api('GET', 'channels/' + encodeURIComponent(channel) + '/members' + query(after, limit))).clients, user);
          const channels = pager('channels', async (after, limit) => (await api('GET', 'channels' + query(after, limit))).channels, (row) => {
            const li = el('li', 'pick' + (row.name === channel ? ' selected' : ''));
            li.appendChild(el('span', 'grow', row.name));
            li.appendChild(el('span', 'muted small', row.online + ' online / ' + row.members + ' members'));
            li.addEventListener('click', () => {
              channel = row.name;
              for (const other of $('channels').children) other.classList.toggle('selected', other === li);
              $('membersTitle').textContent = 'Members of ' + row.name;
              $('membersPanel').classList.remove('hidden');
              $('channel').value = row.name;
              members.reset();
            });
            return li;
          });
          $('pageSize').addEventListener('change', () => { online.reset(); channels.reset(); if (channel) members.reset(); });

          // Sending: the target kind picks the endpoint; the data must be JSON.
          const kind = () => document.querySelector('input[name=kind]:checked').value;
          function showFields() {
            $('toField').classList.toggle('hidden', kind() !== 'users');
            $('receiptField').classList.toggle('hidden', kind() !== 'users');
            $('channelField').classList.toggle('hidden', kind() !== 'channel');
          }
          for (const radio of document.querySelectorAll('input[name=kind]')) radio.addEventListener('change', showFields);
          function result(text, ok) {
            $('sendResult').textContent = text;
            $('sendResult').className = 'result ' + (ok ? 'ok' : 'bad');
          }
          $('sendForm').addEventListener('submit', async (event) => {
            event.preventDefault();
            let data;
            try { data = JSON.parse($('data').value); } catch (error) { return result('data is not JSON: ' + error.message, false); }
            const from = $('from').value.trim(), body = { data };
            let path;
            if (kind() === 'broadcast') {
              path = 'broadcasts';
              if (from) body.from = from;
            } else {
              if (!from) return result('a sender (from) is needed', false);
              body.from = from;
              if (kind() === 'users') {
                body.to = $('to').value.split(',').map((s) => s.trim()).filter((s) => s);
                if (!body.to.length) return result('name at least one receiver (comma-separated)', false);
                body.receipt = $('receipt').checked;
                path = 'messages';
              } else {
                const name = $('channel').value.trim();
                if (!name) return result('name a channel', false);
                path = 'channels/' + encodeURIComponent(name) + '/messages';
              }
            }
            $('send').disabled = true;
            try {
              const sent = await api('POST', path, body);
              result('sent, id ' + sent.id + (sent.offline ? (sent.offline.length ? ' \u00b7 offline: ' + sent.offline.join(', ') : ' \u00b7 every receiver online') : ''), true);
            } catch (error) {
              result(error instanceof APIError ? error.status + ' ' + error.code + ': ' + error.message : 'not sent: ' + error.message, false);
            } finally {
              $('send').disabled = false;
            }
          });

          function start() {
            banner('');
            last = null;
            for (const name in series) series[name] = [];
            poll().then(() => {
              if (waitingForKey) return;
              online.reset();
              channels.reset();
            });
          }
          setInterval(() => { if (!waitingForKey && !document.hidden) { online.load(); channels.load(); } }, 5000);
          window.addEventListener('resize', () => { for (const name in series) draw($(name + 'Chart'), series[name]); });
          $('forgetKey').classList.toggle('hidden', !key);
          showFields();
          start();
        })();

        """#
}
