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

          function noop() {}
          function describe(value) {
            const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
            return text.length > 80 ? text.slice(0, 80) + '...' : text;
          }

          class ImClient {
            /**
             * options.getURL: async () => "ws://host/ws?token=..." (called for every connect; tokens are single use)
             * options.onMessage(msg), onReceipt(r), onReady(info), onClose(code, reason), onStatus(text): optional.
             * msg.kind is "channel" (msg.chan names it), "broadcast" (to everyone) or "direct" (to this user).
             */
            constructor(options) {
              if (!options || typeof options.getURL !== 'function') {
                throw new TypeError('ImClient: options.getURL must be a function returning the WebSocket URL');
              }
              this.options = options;
              this.ws = null;            // the current WebSocket, if any
              this.info = null;          // the last "ready" frame
              this.stopped = true;       // true until connect(), after close(), or after a final close code
              this._attempt = 0;         // failed attempts since the last "ready"
              this._connecting = false;  // waiting for getURL()
              this._retryTimer = null;
              this._pingTimer = null;
              this._lastFrameAt = 0;
              this._onNetworkBack = () => { if (this._retryTimer) this._retryNow(); };
              if (root.addEventListener) root.addEventListener('online', this._onNetworkBack);
            }

            /** Whether the socket is open and the server has sent "ready". */
            get connected() {
              return !!this.ws && this.ws.readyState === 1 && this.info !== null;
            }

            /** Opens the connection (and keeps it open, reconnecting with backoff). */
            connect() {
              this.stopped = false;
              if (this._connecting) return;
              if (this.ws && (this.ws.readyState === 0 || this.ws.readyState === 1)) return;
              this._clearRetry();
              this._attempt = 0;
              this._open();
            }

            /** Closes the connection for good; connect() starts again. */
            close() {
              this.stopped = true;
              this._clearRetry();
              this._stopPing();
              if (this.ws && this.ws.readyState <= 1) {
                this.ws.close(1000, 'bye');
                this._status('closing');
              } else {
                this._status('closed');
              }
            }

            async _open() {
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
              let ws;
              try {
                ws = new WebSocket(url);
              } catch (err) {
                this._status('bad WebSocket URL: ' + ((err && err.message) || err));
                this._scheduleRetry();
                return;
              }
              this.ws = ws;
              this.info = null;
              ws.onopen = () => {
                if (ws !== this.ws) return;
                this._status('connected, waiting for the server');
                this._startPing(ws);
              };
              ws.onmessage = (event) => this._frame(ws, event.data);
              ws.onerror = noop; // a close event always follows
              ws.onclose = (event) => this._closed(ws, event.code, event.reason || '');
            }

            _frame(ws, data) {
              if (ws !== this.ws) return;
              this._lastFrameAt = Date.now();
              if (typeof data !== 'string') return;
              let frame;
              try { frame = JSON.parse(data); } catch (err) { return; }
              if (!frame || typeof frame !== 'object') return;
              switch (frame.type) {
                case 'ready':
                  this._attempt = 0;
                  this.info = frame;
                  this._status('online as ' + frame.client + ' (node ' + frame.node + ')');
                  this._call('onReady', frame);
                  break;
                case 'message':
                  frame.kind = typeof frame.chan === 'string' ? 'channel' : (frame.broadcast === true ? 'broadcast' : 'direct');
                  this._call('onMessage', frame);
                  if (frame.receipt === true && typeof frame.id === 'string') this._send(ws, { type: 'ack', id: frame.id });
                  break;
                case 'receipt':
                  this._call('onReceipt', frame);
                  break;
                case 'pong':
                default:
                  break;
              }
            }

            _closed(ws, code, reason) {
              if (ws !== this.ws) return; // an older socket, already replaced
              this.ws = null;
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
              if (!this.stopped && !this._connecting && !this.ws) this._open();
            }

            _clearRetry() { if (this._retryTimer) clearTimeout(this._retryTimer); this._retryTimer = null; }

            _startPing(ws) {
              this._stopPing();
              this._lastFrameAt = Date.now();
              this._pingTimer = setInterval(() => {
                if (ws !== this.ws) return this._stopPing();
                if (Date.now() - this._lastFrameAt > SILENCE_LIMIT) {
                  // The server answers every ping: the link is dead. Give up on this socket now.
                  ws.onclose = ws.onmessage = ws.onopen = null;
                  try { ws.close(4000, 'no pong'); } catch (err) { /* ignore */ }
                  this._closed(ws, 4000, 'no pong');
                  return;
                }
                this._send(ws, { type: 'ping' });
              }, PING_EVERY);
            }

            _stopPing() { if (this._pingTimer) clearInterval(this._pingTimer); this._pingTimer = null; }

            _send(ws, frame) {
              if (ws === this.ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
            }

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
