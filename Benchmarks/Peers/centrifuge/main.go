// Command centrifuge-peer runs Centrifugo's engine, the centrifuge Go library (0.15, Debian's
// golang-github-centrifugal-centrifuge-dev), as a peer that imbench measures beside ImServer
// and nats-server with the same client:
//
//   - clients connect to /connection/websocket and speak the library's JSON protocol (v1):
//     no token; a `user` query parameter names the connection's user (otherwise it is its own);
//   - every subscribe is allowed but one to another user's channel (Centrifugo's `#` boundary: `#r7`
//     is user r7's personal channel, readable by r7 only);
//   - a back-end publishes with POST /api, shaped like Centrifugo's server API:
//     {"method":"publish","params":{"channel":"…","data":{…}}} answered {"result":{}};
//   - the memory engine by default; -redis host:port puts the broker and presence on Redis,
//     so that several peers share channels.
//
// Build it offline with build.sh beside this file (GOPATH mode on Debian's packages), then:
//
//	centrifuge-peer -listen 127.0.0.1:7801 -api-listen 127.0.0.1:7800
//	imbench fanout --peer centrifuge://127.0.0.1:7800 --url ws://127.0.0.1:7801/connection/websocket …
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge"
)

// maxAPIBody bounds one API request's body.
const maxAPIBody = 1 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "host:port for client WebSockets (/connection/websocket), and the API unless -api-listen")
	apiListen := flag.String("api-listen", "", "host:port for the server API (POST /api); empty: on -listen")
	redisAddress := flag.String("redis", "", "Redis host:port (or redis://host:port/db) for the broker and presence; empty: the memory engine")
	redisPrefix := flag.String("redis-prefix", "centrifuge", "prefix of the keys and channels in Redis")
	logLevel := flag.String("log", "error", "library log level: none, debug, info or error")
	writeBufferPool := flag.Bool("write-buffer-pool", false, "share WebSocket write buffers between connections (Centrifugo's websocket_use_write_buffer_pool)")
	flag.Parse()

	level, ok := map[string]centrifuge.LogLevel{
		"none": centrifuge.LogLevelNone, "debug": centrifuge.LogLevelDebug, "info": centrifuge.LogLevelInfo,
		"error": centrifuge.LogLevelError,
	}[*logLevel]
	if !ok {
		log.Fatalf("-log %q: expected none, debug, info or error", *logLevel)
	}

	config := centrifuge.DefaultConfig
	config.Name = "centrifuge-peer"
	config.LogLevel = level
	config.LogHandler = func(entry centrifuge.LogEntry) { log.Printf("%s: %v", entry.Message, entry.Fields) }
	node, err := centrifuge.New(config)
	if err != nil {
		log.Fatalf("node: %v", err)
	}
	engine := "memory"
	if *redisAddress != "" {
		if err := useRedis(node, *redisAddress, *redisPrefix); err != nil {
			log.Fatalf("redis %s: %v", *redisAddress, err)
		}
		engine = "redis " + *redisAddress
	}

	node.OnConnecting(func(ctx context.Context, event centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		// A `user` query parameter was put into the context by withUser; without one, the
		// connection is its own user (the library's generated client id).
		if credentials, ok := centrifuge.GetCredentials(ctx); ok {
			return centrifuge.ConnectReply{Credentials: credentials}, nil
		}
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: event.ClientID}}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnSubscribe(func(event centrifuge.SubscribeEvent, callback centrifuge.SubscribeCallback) {
			if !maySubscribe(client.UserID(), event.Channel) {
				callback(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
				return
			}
			callback(centrifuge.SubscribeReply{}, nil)
		})
	})
	if err := node.Run(); err != nil {
		log.Fatalf("node: %v", err)
	}

	clients := http.NewServeMux()
	clients.Handle("/connection/websocket", withUser(centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		UseWriteBufferPool: *writeBufferPool,
	})))
	api := clients
	if *apiListen != "" {
		api = http.NewServeMux()
	}
	api.Handle("/api", apiHandler(node))

	servers := []*http.Server{serve(*listen, clients)}
	if *apiListen != "" {
		servers = append(servers, serve(*apiListen, api))
	}
	apiAddress := *listen
	if *apiListen != "" {
		apiAddress = *apiListen
	}
	log.Printf("centrifuge peer: clients ws://%s/connection/websocket, API http://%s/api, engine %s", *listen, apiAddress, engine)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, server := range servers {
		_ = server.Shutdown(ctx)
	}
	_ = node.Shutdown(ctx)
}

// serve listens on address (exiting when it cannot) and serves handler in the background.
func serve(address string, handler http.Handler) *http.Server {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		log.Fatalf("listen %s: %v", address, err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serve %s: %v", address, err)
		}
	}()
	return server
}

// useRedis puts the node's broker and presence on one Redis shard.
func useRedis(node *centrifuge.Node, address, prefix string) error {
	shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: address})
	if err != nil {
		return err
	}
	broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{
		Prefix: prefix, Shards: []*centrifuge.RedisShard{shard},
	})
	if err != nil {
		return err
	}
	presence, err := centrifuge.NewRedisPresenceManager(node, centrifuge.RedisPresenceManagerConfig{
		Prefix: prefix, Shards: []*centrifuge.RedisShard{shard},
	})
	if err != nil {
		return err
	}
	node.SetBroker(broker)
	node.SetPresenceManager(presence)
	return nil
}

// maySubscribe says whether user may subscribe to channel, by Centrifugo's rule for
// user-limited channels (the library leaves channel rules to its user): a channel without `#`
// is anyone's; one with `#` only its users', the comma-separated names after the last `#`
// (`#r7` is user r7's personal channel, `dialog#a,b` is a's and b's).
func maySubscribe(user, channel string) bool {
	boundary := strings.LastIndexByte(channel, '#')
	if boundary < 0 {
		return true
	}
	for _, allowed := range strings.Split(channel[boundary+1:], ",") {
		if allowed == user {
			return true
		}
	}
	return false
}

// withUser sets the connection's credentials from a `user` query parameter, when there is one.
func withUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(writer http.ResponseWriter, request *http.Request) {
		if user := request.URL.Query().Get("user"); user != "" {
			ctx := centrifuge.SetCredentials(request.Context(), &centrifuge.Credentials{UserID: user})
			request = request.WithContext(ctx)
		}
		next.ServeHTTP(writer, request)
	})
}

// apiCommand is one command of the server API, as Centrifugo's: a method and its params.
type apiCommand struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// publishParams are the params of `publish`.
type publishParams struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// apiError is the error of a command's reply, with Centrifugo's codes (107 bad request,
// 104 method not found, 100 internal).
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// apiHandler serves POST /api: one command, or several separated by newlines (one reply line
// each, in order). A body that is not JSON is a 400; a command that fails is answered 200
// with an `error`, as Centrifugo answers.
func apiHandler(node *centrifuge.Node) http.Handler {
	return http.HandlerFunc(func(writer http.ResponseWriter, request *http.Request) {
		if request.Method != http.MethodPost {
			writer.Header().Set("Allow", http.MethodPost)
			writeReply(writer, http.StatusMethodNotAllowed, map[string]apiError{"error": {107, "bad request: POST only"}})
			return
		}
		body, err := io.ReadAll(io.LimitReader(request.Body, maxAPIBody+1))
		if err != nil || len(body) > maxAPIBody {
			writeReply(writer, http.StatusRequestEntityTooLarge, map[string]apiError{"error": {107, "bad request: body unreadable or over 1 MiB"}})
			return
		}
		decoder := json.NewDecoder(bytes.NewReader(body))
		var replies bytes.Buffer
		for {
			var command apiCommand
			if err := decoder.Decode(&command); err == io.EOF {
				break
			} else if err != nil {
				writeReply(writer, http.StatusBadRequest, map[string]apiError{"error": {107, "bad request: " + err.Error()}})
				return
			}
			var reply interface{} = map[string]struct{}{"result": {}}
			if failure := run(node, command); failure != nil {
				reply = map[string]*apiError{"error": failure}
			}
			_ = json.NewEncoder(&replies).Encode(reply)
		}
		if replies.Len() == 0 {
			writeReply(writer, http.StatusBadRequest, map[string]apiError{"error": {107, "bad request: no command"}})
			return
		}
		writer.Header().Set("Content-Type", "application/json")
		_, _ = writer.Write(replies.Bytes())
	})
}

// writeReply answers with status and reply as JSON.
func writeReply(writer http.ResponseWriter, status int, reply interface{}) {
	writer.Header().Set("Content-Type", "application/json")
	writer.WriteHeader(status)
	_ = json.NewEncoder(writer).Encode(reply)
}

// run carries out one API command; nil when it succeeded.
func run(node *centrifuge.Node, command apiCommand) *apiError {
	switch strings.ToLower(command.Method) {
	case "publish":
		var params publishParams
		if err := json.Unmarshal(command.Params, &params); err != nil || params.Channel == "" || len(params.Data) == 0 {
			return &apiError{107, "bad request: publish needs params.channel and params.data"}
		}
		// Compacted: the JSON protocol ends each reply with a newline, which clients may split on.
		var data bytes.Buffer
		if err := json.Compact(&data, params.Data); err != nil {
			return &apiError{107, "bad request: " + err.Error()}
		}
		if _, err := node.Publish(params.Channel, data.Bytes()); err != nil {
			return &apiError{100, "internal server error: " + err.Error()}
		}
		return nil
	default:
		return &apiError{104, "method not found"}
	}
}
