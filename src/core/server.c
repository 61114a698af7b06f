/* server.c - written next */
#include "ota/server.h"
