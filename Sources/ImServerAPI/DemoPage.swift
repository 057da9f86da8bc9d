/// The demo chat page served at `GET /` when the node runs with `--demo`.
enum DemoPage {
    /// The HTML document (it loads `/imclient.js`).
    static let html = ##"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>ImServer demo chat</title>
        <link rel="icon" href="data:,">
        <style>
          :root { --bg: #f4f5f8; --card: #ffffff; --text: #1d2230; --muted: #6b7285; --line: #e3e6ee;
            --accent: #4f6cf7; --accent-soft: #e8ecff; --private: #a451d6; --private-soft: #f5eafc; --ok: #1f9d55; --warn: #d97706; --bad: #dc2626; }
          @media (prefers-color-scheme: dark) {
            :root { --bg: #12141a; --card: #1b1e27; --text: #e6e8ef; --muted: #8b91a3; --line: #2a2e3a;
              --accent: #7b8fff; --accent-soft: #252c4d; --private: #c58af0; --private-soft: #2f2340; }
          }
          * { box-sizing: border-box; }
          html, body { height: 100%; margin: 0; }
          body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); display: flex; flex-direction: column; }
          header { display: flex; align-items: center; gap: 10px; padding: 10px 16px; background: var(--card); border-bottom: 1px solid var(--line); }
          header h1 { font-size: 16px; margin: 0; font-weight: 650; }
          .pill { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); background: var(--bg); border: 1px solid var(--line); padding: 3px 10px; border-radius: 999px; max-width: 55vw; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
          .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--warn); flex: none; }
          .pill.online .dot { background: var(--ok); } .pill.offline .dot { background: var(--bad); }
          button { font: inherit; border: 0; border-radius: 8px; padding: 8px 14px; background: var(--accent); color: #fff; cursor: pointer; }
          button.ghost { background: transparent; color: var(--muted); border: 1px solid var(--line); padding: 4px 10px; }
          button:disabled { opacity: .5; cursor: default; }
          input { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; outline: none; min-width: 0; }
          input:focus { border-color: var(--accent); }
          .hidden { display: none !important; }
          #login { margin: auto; background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 28px; width: min(360px, 92vw); box-shadow: 0 8px 30px rgba(0,0,0,.06); }
          #login h2 { margin: 0 0 4px; font-size: 20px; } #login p { margin: 0 0 16px; color: var(--muted); }
          #login form { display: flex; gap: 8px; } #login input { flex: 1; }
          .error { color: var(--bad); min-height: 1.4em; margin-top: 8px; font-size: 13px; }
          #chat { flex: 1; display: flex; min-height: 0; }
          aside { width: 200px; flex: none; background: var(--card); border-right: 1px solid var(--line); padding: 12px; overflow-y: auto; }
          aside h3 { margin: 4px 6px 8px; font-size: 11px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
          .who { display: flex; align-items: center; gap: 8px; padding: 6px 8px; border-radius: 8px; cursor: pointer; user-select: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
          .who:hover { background: var(--bg); } .who .dot { background: var(--ok); }
          .who.selected { background: var(--accent-soft); color: var(--accent); font-weight: 600; }
          .who.me { cursor: default; color: var(--muted); }
          .who.room .dot { background: var(--accent); border-radius: 2px; }
          main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
          #log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 6px; }
          .msg { max-width: 78%; align-self: flex-start; background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 6px 10px; overflow-wrap: anywhere; }
          .msg.mine { align-self: flex-end; background: var(--accent-soft); border-color: transparent; }
          .msg.private { border-left: 3px solid var(--private); background: var(--private-soft); }
          .meta { font-size: 11px; color: var(--muted); display: flex; gap: 6px; flex-wrap: wrap; align-items: baseline; }
          .meta .from { font-weight: 650; color: var(--text); }
          .tag { font-size: 10px; text-transform: uppercase; letter-spacing: .05em; color: var(--private); font-weight: 700; }
          .ticks { font-size: 11px; color: var(--muted); text-align: right; min-height: 0; }
          .ticks .acked, .ticks .delivered { color: var(--ok); } .ticks .offline { color: var(--warn); }
          .note { align-self: center; font-size: 12px; color: var(--muted); padding: 2px 8px; } .note.bad { color: var(--bad); }
          form.composer { display: flex; gap: 8px; padding: 12px 16px; background: var(--card); border-top: 1px solid var(--line); align-items: center; } form.composer input { flex: 1; }
          .target { font-size: 12px; padding: 4px 10px; border-radius: 999px; background: var(--accent-soft); color: var(--accent); white-space: nowrap; cursor: pointer; max-width: 40%; overflow: hidden; text-overflow: ellipsis; }
          .target.private { background: var(--private-soft); color: var(--private); }
          .stale .who .dot { background: var(--muted); } .stale .who { color: var(--muted); }
          .msg.broadcast { border-left: 3px solid var(--warn); }
          .tag.broadcast { color: var(--warn); }
          #count { font-size: 11px; color: var(--muted); min-width: 5ch; text-align: right; } #count.over { color: var(--bad); font-weight: 700; }
          #ended { align-self: center; text-align: center; padding: 10px; }
          @media (max-width: 640px) {
            #chat { flex-direction: column; }
            aside { width: auto; border-right: 0; border-bottom: 1px solid var(--line); max-height: 30vh; padding: 6px; }
            aside h3 { display: none; }
            #users { display: flex; gap: 4px; overflow-x: auto; flex-wrap: nowrap; }
            .who { flex: none; max-width: 60vw; }
            .msg { max-width: 92%; }
            header h1 { font-size: 14px; }
            .pill { max-width: 50vw; }
            #count { display: none; }
          }
        </style>
        </head>
        <body>
        <header>
          <h1>ImServer demo</h1>
          <span style="flex: 1"></span>
          <span id="status" class="pill offline"><span class="dot"></span><span id="statusText">not connected</span></span>
          <button id="logout" class="ghost hidden" type="button">Leave</button>
        </header>
        <section id="login">
          <h2>Join the chat</h2>
          <p>Pick a name (up to 32 bytes). Open a second tab with another name to chat with yourself.</p>
          <form id="loginForm">
            <input id="name" placeholder="alice" autocomplete="off" maxlength="32" dir="auto" required>
            <button type="submit">Join</button>
          </form>
          <div id="loginError" class="error"></div>
        </section>
        <div id="chat" class="hidden">
          <aside><h3>Talk to</h3><div id="users"></div></aside>
          <main>
            <div id="log"></div>
            <form class="composer" id="composer">
              <span id="target" class="target" title="Click to go back to the room"></span>
              <input id="text" placeholder="Write a message" autocomplete="off" dir="auto">
              <span id="count"></span>
              <button id="send" type="submit">Send</button>
            </form>
          </main>
        </div>
        <script src="/imclient.js"></script>
        <script>
        (function () {
          'use strict';
          const ROOM = 'lobby';
          const $ = (id) => document.getElementById(id);
          const RANK = { offline: 1, delivered: 2, acked: 3 };
          const LABEL = { offline: 'offline', delivered: '\u2713 delivered', acked: '\u2713\u2713 acked' };
          let me = null, client = null, target = null, busy = false; // target: null = room, else a user name
          const online = new Set();
          const shown = new Set();        // message ids already in the log
          const sent = new Map();         // my message id -> { ticks, statuses: Map(to -> status) }
          const early = new Map();        // receipts that arrived before the POST answer: id -> [receipt]

          function el(tag, cls, text) {
            const node = document.createElement(tag);
            if (cls) node.className = cls;
            if (text !== undefined) node.textContent = String(text);
            return node;
          }
          function time(ts) {
            return new Date(typeof ts === 'number' ? ts : Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
          }
          const MAX_TEXT = 2000;      // characters a message may have (the demo endpoints refuse more)
          // Appends `node` to the log; follows it down if the reader was at the bottom before
          // (measured before the node is added, so a tall message still scrolls into view).
          function append(node, force) {
            const log = $('log');
            const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
            log.appendChild(node);
            if (force || atBottom) log.scrollTop = log.scrollHeight;
          }
          function note(text, bad) { append(el('div', bad ? 'note bad' : 'note', text), false); }
          const textOf = (data) => (data && typeof data.text === 'string' ? data.text : JSON.stringify(data));
          function setStatus(text, state) {
            $('statusText').textContent = text;
            $('status').className = 'pill ' + state;
          }

          async function api(method, path, body) {
            const res = await fetch(path, body === undefined ? { method } : {
              method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
            if (!res.ok) throw new Error((await res.text()).trim() || (res.status + ' ' + res.statusText));
            return res.json();
          }
          const login = (name) => api('GET', '/demo/login?user=' + encodeURIComponent(name));

          // One log entry: { id, from, to, text, ts, priv, broadcast, mine }
          function addMessage(m) {
            if (m.id && shown.has(m.id)) return;
            if (m.id) shown.add(m.id);
            const box = el('div', 'msg' + (m.mine ? ' mine' : '') + (m.priv ? ' private' : '') + (m.broadcast ? ' broadcast' : ''));
            const meta = el('div', 'meta');
            if (m.priv) meta.appendChild(el('span', 'tag', 'private'));
            if (m.broadcast) meta.appendChild(el('span', 'tag broadcast', 'to everyone'));
            meta.appendChild(el('span', 'from', m.mine ? (m.priv ? 'you \u2192 ' + m.to : 'you') : m.from));
            meta.appendChild(el('span', '', time(m.ts)));
            box.appendChild(meta);
            const body = el('div', 'body', m.text);
            body.dir = 'auto';
            box.appendChild(body);
            if (m.mine && m.priv && m.id) {
              const ticks = el('div', 'ticks', 'sent');
              box.appendChild(ticks);
              sent.set(m.id, { ticks, statuses: new Map() });
              for (const to of m.offline || []) applyReceipt({ id: m.id, to, status: 'offline' });
              for (const r of early.get(m.id) || []) applyReceipt(r);
              early.delete(m.id);
            }
            append(box, m.mine);
          }
          function applyReceipt(r) {
            const entry = sent.get(r.id);
            if (!entry) {
              if (!early.has(r.id)) early.set(r.id, []);
              early.get(r.id).push(r);
              if (early.size > 200) early.delete(early.keys().next().value);
              return;
            }
            const old = entry.statuses.get(r.to);
            if (!old || (RANK[r.status] || 0) > (RANK[old] || 0)) entry.statuses.set(r.to, r.status);
            entry.ticks.textContent = '';
            for (const [to, status] of entry.statuses) {
              const span = el('span', status, (LABEL[status] || status) + (entry.statuses.size > 1 ? ' (' + to + ')' : ''));
              if (entry.ticks.childNodes.length) entry.ticks.appendChild(document.createTextNode(' \u00b7 '));
              entry.ticks.appendChild(span);
            }
          }

          function renderUsers() {
            const list = $('users');
            list.textContent = '';
            const room = el('div', 'who room' + (target === null ? ' selected' : ''));
            room.appendChild(el('span', 'dot'));
            room.appendChild(el('span', '', 'Room: ' + ROOM));
            room.onclick = () => select(null);
            list.appendChild(room);
            for (const user of [...online].sort()) {
              const row = el('div', 'who' + (user === me ? ' me' : '') + (user === target ? ' selected' : ''));
              row.appendChild(el('span', 'dot'));
              row.appendChild(el('span', '', user === me ? user + ' (you)' : user));
              if (user !== me) row.onclick = () => select(user === target ? null : user);
              list.appendChild(row);
            }
          }
          function select(user) {
            target = user;
            const chip = $('target');
            chip.textContent = user === null ? 'Room: ' + ROOM : 'Private \u2192 ' + user + '  \u00d7';
            chip.className = 'target' + (user === null ? '' : ' private');
            $('text').placeholder = user === null ? 'Message everyone in ' + ROOM : 'Private message to ' + user;
            renderUsers();
            $('text').focus();
          }
          async function refreshOnline() {
            try {
              const data = await api('GET', '/demo/online');
              online.clear();
              for (const user of data.users || []) online.add(user);
              renderUsers();
            } catch (err) { note('could not load who is online: ' + err.message, true); }
          }

          function onMessage(msg) {
            const data = msg.data;
            // Presence announcements: from `system` to the demo's room (a name users cannot take).
            if (msg.from === 'system' && msg.kind === 'channel' && data && typeof data.user === 'string'
                && (data.event === 'online' || data.event === 'offline')) {
              if (data.event === 'online') online.add(data.user); else online.delete(data.user);
              renderUsers();
              if (data.user !== me) note(data.user + (data.event === 'online' ? ' is online' : ' went offline'));
              return;
            }
            if (msg.kind === 'channel' && msg.chan !== ROOM) return;
            addMessage({ id: msg.id, from: msg.from, text: textOf(data), ts: msg.ts, priv: msg.kind === 'direct',
              broadcast: msg.kind === 'broadcast', mine: msg.from === me && msg.kind === 'channel' });
          }
          // Shows whether the lists can be trusted: grey while the connection is down.
          function setLive(live) { $('users').classList.toggle('stale', !live); }
          function ended(reason) {
            // Forced offline (4003): stop sending, say so, offer to log in again.
            $('text').disabled = true;
            $('send').disabled = true;
            setLive(false);
            const box = el('div', 'note bad');
            box.id = 'ended';
            box.appendChild(el('div', '', 'You were disconnected by the server (' + reason + '). Nothing you type is sent.'));
            const again = el('button', '', 'Log in again');
            again.type = 'button';
            again.onclick = () => { const name = me; logout(); start(name); };
            box.appendChild(again);
            append(box, true);
          }

          async function start(name) {
            if (me || busy) return;
            busy = true;
            $('loginError').textContent = '';
            let first;
            try { first = await login(name); } catch (err) { $('loginError').textContent = err.message; return; } finally { busy = false; }
            me = first.user || name;
            let firstURL = first.url;
            try { sessionStorage.setItem('imdemo.user', me); } catch (err) { /* private mode */ }
            $('login').classList.add('hidden');
            $('chat').classList.remove('hidden');
            $('logout').classList.remove('hidden');
            document.title = me + ' \u2013 ImServer demo';
            online.add(me);
            select(null);
            $('text').disabled = false;
            $('send').disabled = false;
            // ?transport=eventsource (or websocket) tries only that transport; by default both.
            // ?encoding=msgpack asks for the compact encoding.
            const query = new URLSearchParams(location.search);
            const only = query.get('transport');
            const c = new ImClient({
              transports: only ? [only] : undefined,
              encoding: query.get('encoding') || undefined,
              getURL: async () => {
                if (firstURL) { const url = firstURL; firstURL = null; return url; }
                return (await login(me)).url;
              },
              onStatus: (text) => {
                if (client !== c) return;
                setStatus(text, c.connected ? 'online' : (c.stopped ? 'offline' : 'pending'));
                setLive(c.connected);
              },
              onReady: () => { if (client === c) refreshOnline(); },
              onMessage: (msg) => { if (client === c) onMessage(msg); },
              onReceipt: (r) => { if (client === c) applyReceipt(r); },
              onClose: (code, reason) => { if (client === c && code === 4003) ended(reason || 'forced offline'); },
            });
            client = c;
            c.connect();
          }

          $('loginForm').onsubmit = (event) => {
            event.preventDefault();
            const name = $('name').value.trim();
            if (name) start(name);
          };
          function logout() {
            if (client) client.close();
            client = null; me = null; target = null;
            online.clear(); shown.clear(); sent.clear(); early.clear();
            $('log').textContent = '';
            $('chat').classList.add('hidden');
            $('logout').classList.add('hidden');
            $('login').classList.remove('hidden');
            setStatus('not connected', 'offline');
            document.title = 'ImServer demo chat';
            outbox = Promise.resolve();
          }
          $('logout').onclick = logout;
          $('target').onclick = () => select(null);
          // Sends go out one after another, in the order typed: a request starts only once the
          // one before it was answered, so the room gets a quick burst in order too.
          let outbox = Promise.resolve();
          function countLength() {
            const length = [...$('text').value].length;
            $('count').textContent = length > MAX_TEXT - 200 ? length + '/' + MAX_TEXT : '';
            $('count').className = length > MAX_TEXT ? 'over' : '';
          }
          $('text').oninput = countLength;
          $('composer').onsubmit = (event) => {
            event.preventDefault();
            const input = $('text');
            const text = input.value.trim();
            if (!text || !me || !client || client.stopped) return;
            if ([...text].length > MAX_TEXT) { note('not sent: a message has at most ' + MAX_TEXT + ' characters', true); return; }
            input.value = '';
            countLength();
            const to = target, from = me, session = client;
            outbox = outbox.then(async () => {
              if (client !== session) return;
              try {
                if (to === null) {
                  const res = await api('POST', '/demo/room', { from, text });
                  addMessage({ id: res.id, from, text, ts: Date.now(), mine: true });
                } else {
                  const res = await api('POST', '/demo/send', { from, to, text });
                  addMessage({ id: res.id, from, to, text, ts: Date.now(), priv: true, mine: true, offline: res.offline });
                }
              } catch (err) {
                const shown = text.length > 40 ? text.slice(0, 40) + '\u2026' : text;
                note('not sent: \u201c' + shown + '\u201d (' + err.message + ')', true);
              }
            });
          };
          try { $('name').value = sessionStorage.getItem('imdemo.user') || ''; } catch (err) { /* ignore */ }
          $('name').focus();
        })();
        </script>
        </body>
        </html>
        """##
}
