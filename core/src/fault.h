/*
** fault.h - test-only crash points in the commit protocol. Built with
** -DKLEVDB_FAULTS (the test module klevdb_faults), FAULT_POINT() counts
** the points a process passes and kills it at the one KLEVDB_FAULT_AT
** names; in every other build it is nothing.
*/
#ifndef KLEVDB_FAULT_H
#define KLEVDB_FAULT_H

#ifdef KLEVDB_FAULTS
void kfault_point(void);
#define FAULT_POINT() kfault_point()
#else
#define FAULT_POINT() ((void)0)
#endif

#endif
