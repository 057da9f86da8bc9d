extension PublicRoutes {
    /// Serves the browser client library at `GET /imclient.js`.
    public mutating func addClientScript() {
        add(.GET, "/imclient.js") { _ in
            PublicResponse(contentType: "text/javascript; charset=utf-8", text: ClientScript.source)
        }
    }
}
