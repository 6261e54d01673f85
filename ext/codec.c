/* codec.c - being written. */
#include "kvt.h"
