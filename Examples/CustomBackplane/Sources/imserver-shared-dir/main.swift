import ImServerApp
import ImSharedDirectory

// The stock imserver, plus shared-dir:// (every setting, flag and scheme of imserver works).
await ImServerMain.run { factory in factory.registerSharedDirectory() }
