#ifndef IMSERVER_CNATS_SHIM_H
#define IMSERVER_CNATS_SHIM_H
#include <nats/nats.h>
#endif
