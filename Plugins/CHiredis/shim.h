#ifndef IMSERVER_CHIREDIS_SHIM_H
#define IMSERVER_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
