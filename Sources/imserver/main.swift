import ImServerApp

// The stock server: the built-in backplanes (memory://, redis://, rediss://).
await ImServerMain.run()
