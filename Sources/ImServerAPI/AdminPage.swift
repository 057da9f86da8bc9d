/// The admin page served at `GET /admin` on the API port: the node live (connections, rates,
/// latency), online users and channels, and a form to send a message.
///
/// Self-contained (inline style and script, no other resource) and holding no data: its
/// script calls the API (`/v1/…`, same origin) with the key the user types, kept in the tab's
/// `sessionStorage` only. Every value from the API is put in the page as text, never as HTML.
enum AdminPage {
    /// The whole document.
    static let html =
        head + "<style>" + AdminPageStyle.css + "</style>\n</head>\n" + body + "<script>" + AdminPageScript.js
        + "</script>\n</body>\n</html>\n"

    private static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>ImServer admin</title>
        <link rel="icon" href="data:,">

        """

    private static let body = """
        <body>
        <header>
          <h1>ImServer admin</h1>
          <span id="node" class="pill"><span class="dot"></span><span id="nodeText">connecting…</span></span>
          <span id="uptime" class="muted"></span>
          <span class="grow"></span>
          <button id="forgetKey" class="ghost hidden" type="button">Forget key</button>
        </header>
        <section id="keyPanel" class="card hidden">
          <h2>API key</h2>
          <p id="keyReason" class="muted">This API needs its key.</p>
          <form id="keyForm" autocomplete="off">
            <input id="key" type="password" placeholder="the node's api.key" required>
            <button type="submit">Use key</button>
          </form>
          <p class="muted small">Kept in this tab only (sessionStorage), sent as Authorization: Bearer.</p>
        </section>
        <div id="banner" class="banner hidden"></div>
        <main id="main">
          <section class="charts">
            <div class="card chart"><div class="label">Connections</div><div id="connections" class="value">–</div><canvas id="connectionsChart"></canvas></div>
            <div class="card chart"><div class="label">Deliveries / s</div><div id="deliveries" class="value">–</div><canvas id="deliveriesChart"></canvas></div>
            <div class="card chart"><div class="label">Frames in / s</div><div id="framesIn" class="value">–</div><canvas id="framesInChart"></canvas></div>
            <div class="card chart"><div class="label">Latency p99 (ms)</div><div id="p99" class="value">–</div><canvas id="p99Chart"></canvas></div>
          </section>
          <section class="card">
            <h2>Totals</h2>
            <dl id="totals" class="totals"></dl>
          </section>
          <div class="columns">
            <section class="card">
              <h2>Online users</h2>
              <ul id="online" class="list"></ul>
              <div class="pager">
                <button id="onlinePrev" class="ghost" type="button">‹ Previous</button>
                <span id="onlinePage" class="muted small"></span>
                <button id="onlineNext" class="ghost" type="button">Next ›</button>
              </div>
            </section>
            <section class="card">
              <h2>Channels</h2>
              <ul id="channels" class="list"></ul>
              <div class="pager">
                <button id="channelsPrev" class="ghost" type="button">‹ Previous</button>
                <span id="channelsPage" class="muted small"></span>
                <button id="channelsNext" class="ghost" type="button">Next ›</button>
              </div>
              <div id="membersPanel" class="hidden">
                <h3 id="membersTitle"></h3>
                <ul id="members" class="list"></ul>
                <div class="pager">
                  <button id="membersPrev" class="ghost" type="button">‹ Previous</button>
                  <span id="membersPage" class="muted small"></span>
                  <button id="membersNext" class="ghost" type="button">Next ›</button>
                </div>
              </div>
            </section>
          </div>
          <label class="small muted pagesize">Rows per page
            <select id="pageSize"><option>1</option><option>5</option><option selected>10</option><option>50</option><option>100</option></select>
          </label>
          <section class="card">
            <h2>Send a message</h2>
            <form id="sendForm" autocomplete="off">
              <div class="row">
                <label><input type="radio" name="kind" value="users" checked> to users</label>
                <label><input type="radio" name="kind" value="channel"> to a channel</label>
                <label><input type="radio" name="kind" value="broadcast"> to everyone</label>
              </div>
              <label class="field">From <input id="from" placeholder="sender id (optional for a broadcast)"></label>
              <label class="field" id="toField">To <input id="to" placeholder="alice, bob"></label>
              <label class="field hidden" id="channelField">Channel <input id="channel" placeholder="lobby"></label>
              <label class="field">Data (JSON) <textarea id="data" rows="3" spellcheck="false">{"text":"hello from the admin page"}</textarea></label>
              <label class="check" id="receiptField"><input id="receipt" type="checkbox"> ask for receipts</label>
              <div class="row"><button id="send" type="submit">Send</button><span id="sendResult" class="result"></span></div>
            </form>
          </section>
        </main>

        """
}
