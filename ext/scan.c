/* scan.c - being written. */
#include "kvt.h"
