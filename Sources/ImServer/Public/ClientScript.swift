/// The browser client library served at `GET /imclient.js`.
enum ClientScript {
    /// The JavaScript source.
    static let source = ##"""
        /* ImClient: browser client for ImServer (wire protocol v1). No dependencies. */
        (function (root) {
          'use strict';

          const MIN_DELAY = 500;        // first reconnect delay, ms
          const MAX_DELAY = 15000;      // reconnect delay cap, ms
          const PING_EVERY = 20000;     // ping interval while open, ms
          const SILENCE_LIMIT = 2 * PING_EVERY + 5000; // no frame at all for this long: the link is dead
          const FINAL_CODES = [4003]; // closed by the server for good: do not reconnect
          const TRANSPORTS = ['websocket', 'eventsource']; // in the order tried
          const COMPACT = 'imserver.v1.msgpack'; // the compact encoding's subprotocol (protocol.md §9)

          function noop() {}
          function describe(value) {
            const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
            return text.length > 80 ? text.slice(0, 80) + '...' : text;
          }
          function available(kind) {
            if (kind === 'websocket') return typeof root.WebSocket === 'function';
            if (kind === 'eventsource') return typeof root.EventSource === 'function' && typeof root.fetch === 'function';
            return false;
          }

          // Reads the MessagePack the compact encoding uses: arrays, non-negative integers, strings, nil.
          function unpack(buffer) {
            const bytes = new Uint8Array(buffer);
            const utf8 = new TextDecoder();
            let at = 0;
            function uint(n) { let v = 0; for (let i = 0; i < n; i++) v = v * 256 + bytes[at++]; return v; }
            function str(n) { const s = utf8.decode(bytes.subarray(at, at + n)); at += n; return s; }
            function list(n) { const a = []; for (let i = 0; i < n; i++) a.push(read()); return a; }
            function read() {
              if (at >= bytes.length) throw new Error('truncated frame');
              const b = bytes[at++];
              if (b <= 0x7f) return b;
              if (b >= 0x90 && b <= 0x9f) return list(b & 0x0f);
              if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
              switch (b) {
                case 0xc0: return null;
                case 0xcc: return uint(1);
                case 0xcd: return uint(2);
                case 0xce: return uint(4);
                case 0xcf: return uint(8);
                case 0xd9: return str(uint(1));
                case 0xda: return str(uint(2));
                case 0xdb: return str(uint(4));
                case 0xdc: return list(uint(2));
                case 0xdd: return list(uint(4));
                default: throw new Error('unexpected MessagePack byte ' + b);
              }
            }
            return read();
          }

          // A compact frame as the frame object its JSON form parses to.
          function fromCompact(a) {
            if (!Array.isArray(a)) return null;
            switch (a[0]) {
              case 0: return { type: 'ready', client: a[1], node: a[2] };
              case 1: {
                const frame = { type: 'message', id: a[1], from: a[2], ts: a[4], data: JSON.parse(a[6]) };
                if (typeof a[3] === 'string') frame.chan = a[3];
                if (a[5] & 1) frame.receipt = true;
                if (a[5] & 2) frame.broadcast = true;
                return frame;
              }
              case 2: return { type: 'receipt', id: a[1], to: a[2], status: a[3] };
              case 3: return { type: 'pong' };
              default: return null;
            }
          }

          // A link is one connection attempt over one transport. It calls onopen() once the server
          // answered, onframe(text) for each frame (null for a keepalive) and onclose(code, reason)
          // once. send(frame) sends a client frame; close(code, reason) closes (onclose follows);
          // abandon() drops it without calling back.
          function link(kind) {
            return { kind: kind, opened: false, keepalive: 0, onopen: noop, onframe: noop, onclose: noop };
          }

          function webSocketLink(url, compact) {
            const ws = compact ? new WebSocket(url, COMPACT) : new WebSocket(url); // throws on a malformed URL
            ws.binaryType = 'arraybuffer';
            const self = link('websocket');
            self.send = (frame) => { if (ws.readyState === 1) ws.send(JSON.stringify(frame)); };
            self.close = (code, reason) => ws.close(code, reason);
            self.abandon = () => {
              ws.onclose = ws.onmessage = ws.onopen = null;
              try { ws.close(4000, 'no pong'); } catch (err) { /* ignore */ }
            };
            ws.onopen = () => { self.opened = true; self.onopen(); };
            ws.onmessage = (event) => {
              if (typeof event.data === 'string') return self.onframe(event.data);
              let frame = null;
              try { frame = fromCompact(unpack(event.data)); } catch (err) { /* not a frame of ours: ignored */ }
              if (frame) self.onframe(frame);
            };
            self.compact = () => ws.protocol === COMPACT;
            ws.onerror = noop; // a close event always follows
            ws.onclose = (event) => self.onclose(event.code, event.reason || '');
            return self;
          }

          // Server-Sent Events (docs/protocol.md §9): the same URL over http(s), frames as events,
          // client frames posted to the stream's session.
          function eventStreamLink(url) {
            const streamURL = url.replace(/^ws/i, 'http');
            const es = new EventSource(streamURL);
            const self = link('eventsource');
            let postURL = null;
            let ended = false;
            function end(code, reason) {
              if (ended) return;
              ended = true;
              es.close();
              self.onclose(code, reason);
            }
            self.send = (frame) => {
              if (!postURL || ended) return;
              root.fetch(postURL, {
                method: 'POST', body: JSON.stringify(frame), keepalive: true,
                headers: { 'content-type': 'text/plain' } // a simple request: no CORS preflight
              }).catch(noop);
            };
            self.close = (code, reason) => end(code, reason);
            self.abandon = () => { ended = true; es.close(); };
            es.addEventListener('session', (event) => {
              let session;
              try { session = JSON.parse(event.data); } catch (err) { session = null; }
              if (!session || typeof session.session !== 'string') return end(1002, 'bad session event');
              const target = new URL(streamURL);
              target.search = '?session=' + encodeURIComponent(session.session);
              postURL = target.toString();
              self.keepalive = typeof session.keepalive === 'number' ? session.keepalive : 0;
              self.opened = true;
              self.onopen();
            });
            es.onmessage = (event) => self.onframe(event.data);
            es.addEventListener('ping', () => self.onframe(null));
            es.addEventListener('close', (event) => {
              let close = {};
              try { close = JSON.parse(event.data) || {}; } catch (err) { /* keep the defaults */ }
              end(typeof close.code === 'number' ? close.code : 1005, typeof close.reason === 'string' ? close.reason : '');
            });
            // EventSource would reconnect with the same, used, token: end here and reconnect with a new URL.
            es.onerror = () => end(1006, self.opened ? 'event stream lost' : 'event stream could not be opened');
            return self;
          }

          class ImClient {
            /**
             * options.getURL: async () => "ws://host/ws?token=..." (called for every connect; tokens are single use)
             * options.onMessage(msg), onReceipt(r), onReady(info), onClose(code, reason), onStatus(text): optional.
             * msg.kind is "channel" (msg.chan names it), "broadcast" (to everyone) or "direct" (to this user).
             * options.transports: the transports to try, in order (default ["websocket", "eventsource"]):
             * when one cannot be opened the next is tried at once; the one that last worked is tried first.
             * options.encoding: "json" (default) or "msgpack", the compact encoding (smaller frames; WebSocket only).
             */
            constructor(options) {
              if (!options || typeof options.getURL !== 'function') {
                throw new TypeError('ImClient: options.getURL must be a function returning the WebSocket URL');
              }
              this.options = options;
              this.link = null;          // the current connection attempt, if any
              this.info = null;          // the last "ready" frame
              this.stopped = true;       // true until connect(), after close(), or after a final close code
              this._transports = (options.transports || TRANSPORTS).filter(available);
              this._next = 0;            // index in _transports of the next attempt's transport
              this._failedInTurn = 0;    // transports that could not be opened since the last that could
              this._attempt = 0;         // failed attempts since the last "ready"
              this._connecting = false;  // waiting for getURL()
              this._retryTimer = null;
              this._pingTimer = null;
              this._lastFrameAt = 0;
              this._onNetworkBack = () => { if (this._retryTimer) this._retryNow(); };
              if (root.addEventListener) root.addEventListener('online', this._onNetworkBack);
            }

            /** Whether the connection is open and the server has sent "ready". */
            get connected() {
              return !!this.link && this.link.opened && this.info !== null;
            }

            /** The transport of the current connection ("websocket" or "eventsource"), or null. */
            get transport() {
              return this.link ? this.link.kind : null;
            }

            /** Opens the connection (and keeps it open, reconnecting with backoff). */
            connect() {
              this.stopped = false;
              if (this._connecting || this.link) return;
              this._clearRetry();
              this._attempt = 0;
              this._open();
            }

            /** Closes the connection for good; connect() starts again. */
            close() {
              this.stopped = true;
              this._clearRetry();
              this._stopPing();
              if (this.link) {
                this._status('closing');
                this.link.close(1000, 'bye');
              } else {
                this._status('closed');
              }
            }

            async _open() {
              if (!this._transports.length) {
                this.stopped = true;
                this._status('this browser supports none of the transports ' + describe(this.options.transports));
                return;
              }
              this._connecting = true;
              this._status(this._attempt ? 'reconnecting' : 'connecting');
              let url;
              try {
                url = await this.options.getURL();
              } catch (err) {
                this._connecting = false;
                if (this.stopped) return;
                this._status('could not get a connection URL: ' + ((err && err.message) || err));
                this._scheduleRetry();
                return;
              }
              this._connecting = false;
              if (this.stopped) return;
              if (typeof url !== 'string' || !/^wss?:\/\/[^\s]+$/i.test(url)) {
                // A failed back-end call often yields undefined or an error body: do not open that.
                this._status('getURL did not return a ws:// or wss:// URL (got ' + describe(url) + ')');
                this._scheduleRetry();
                return;
              }
              const kind = this._transports[this._next % this._transports.length];
              let current;
              try {
                current = kind === 'eventsource'
                  ? eventStreamLink(url)
                  : webSocketLink(url, this.options.encoding === 'msgpack');
              } catch (err) {
                this._status('bad connection URL: ' + ((err && err.message) || err));
                this._scheduleRetry();
                return;
              }
              this.link = current;
              this.info = null;
              current.onopen = () => {
                if (current !== this.link) return;
                this._failedInTurn = 0;
                this._status('connected, waiting for the server');
                this._startPing(current);
              };
              current.onframe = (data) => this._frame(current, data);
              if (!current.compact) current.compact = () => false;
              current.onclose = (code, reason) => this._closed(current, code, reason);
            }

            _frame(current, data) {
              if (current !== this.link) return;
              this._lastFrameAt = Date.now();
              if (data === null) return; // a keepalive
              let frame = data; // a compact frame, already decoded
              if (typeof data === 'string') {
                try { frame = JSON.parse(data); } catch (err) { return; }
              }
              if (!frame || typeof frame !== 'object') return;
              switch (frame.type) {
                case 'ready': {
                  this._attempt = 0;
                  this._next = this._transports.indexOf(current.kind);
                  this.info = frame;
                  const over = current.kind === 'eventsource' ? ', over an event stream' : (current.compact() ? ', compact frames' : '');
                  this._status('online as ' + frame.client + ' (node ' + frame.node + over + ')');
                  this._call('onReady', frame);
                  break;
                }
                case 'message':
                  frame.kind = typeof frame.chan === 'string' ? 'channel' : (frame.broadcast === true ? 'broadcast' : 'direct');
                  this._call('onMessage', frame);
                  if (frame.receipt === true && typeof frame.id === 'string') current.send({ type: 'ack', id: frame.id });
                  break;
                case 'receipt':
                  this._call('onReceipt', frame);
                  break;
                case 'pong':
                default:
                  break;
              }
            }

            _closed(current, code, reason) {
              if (current !== this.link) return; // an older link, already replaced
              this.link = null;
              this.info = null;
              this._stopPing();
              this._call('onClose', code, reason);
              if (FINAL_CODES.indexOf(code) >= 0) {
                this.stopped = true;
                this._status('disconnected by the server: ' + (reason || code));
                return;
              }
              if (this.stopped) {
                this._status('closed');
                return;
              }
              this._status('connection lost (' + code + (reason ? ' ' + reason : '') + ')');
              if (!current.opened && this._transports.length > 1) {
                // Blocked, or the server is down: try the next transport at once, then back off.
                this._next = (this._transports.indexOf(current.kind) + 1) % this._transports.length;
                this._failedInTurn += 1;
                if (this._failedInTurn < this._transports.length) return this._open();
                this._failedInTurn = 0;
              }
              this._scheduleRetry();
            }

            /** Retries after a jittered backoff; the status keeps the reason just reported. */
            _scheduleRetry() {
              this._clearRetry();
              const base = Math.min(MAX_DELAY, MIN_DELAY * Math.pow(2, this._attempt));
              const delay = Math.round(base / 2 + Math.random() * base / 2); // "equal jitter"
              this._attempt = Math.min(this._attempt + 1, 30);
              const why = this._lastStatus ? this._lastStatus + '; ' : '';
              this._status(why + 'reconnecting in ' + (delay / 1000).toFixed(1) + ' s');
              this._retryTimer = setTimeout(() => this._retryNow(), delay);
            }

            _retryNow() {
              this._clearRetry();
              if (!this.stopped && !this._connecting && !this.link) this._open();
            }

            _clearRetry() { if (this._retryTimer) clearTimeout(this._retryTimer); this._retryTimer = null; }

            // Over a WebSocket the client pings and the server answers; over an event stream the
            // server sends a keepalive every `keepalive` ms on its own (no posts needed).
            _startPing(current) {
              this._stopPing();
              this._lastFrameAt = Date.now();
              const streams = current.kind === 'eventsource' && current.keepalive > 0;
              const every = streams ? Math.min(current.keepalive, PING_EVERY) : PING_EVERY;
              const limit = streams ? 2 * current.keepalive + 5000 : SILENCE_LIMIT;
              this._pingTimer = setInterval(() => {
                if (current !== this.link) return this._stopPing();
                if (Date.now() - this._lastFrameAt > limit) {
                  // Nothing heard for too long: the link is dead. Give up on it now.
                  current.abandon();
                  this._closed(current, 4000, 'no pong');
                  return;
                }
                if (!streams) current.send({ type: 'ping' });
              }, every);
            }

            _stopPing() { if (this._pingTimer) clearInterval(this._pingTimer); this._pingTimer = null; }

            _status(text) {
              this._lastStatus = /reconnecting in/.test(text) ? this._lastStatus : text;
              this._call('onStatus', text);
            }

            _call(name, ...args) {
              const fn = this.options[name];
              if (typeof fn !== 'function') return;
              try {
                fn.apply(this.options, args);
              } catch (err) { if (root.console) root.console.error('ImClient ' + name + ' handler failed:', err); }
            }
          }

          root.ImClient = ImClient;
        })(typeof window !== 'undefined' ? window : globalThis);
        """##
}
