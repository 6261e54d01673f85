/* functions.c - being written. */
#include "kvt.h"
