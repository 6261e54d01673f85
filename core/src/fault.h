/*
** fault.h - test-only crash points in the commit protocol. Built with
** -DKLEVDB_FAULTS (the test module klevdb_faults), FAULT_POINT() counts
** the points a process passes and kills it at the one KLEVDB_FAULT_AT
** names; in every other build it is nothing. FAULT_BG_POINT() is the same
** for points of background threads, counted apart (KLEVDB_FAULT_BG_AT) so
** that their timing does not move the numbers of the others.
*/
#ifndef KLEVDB_FAULT_H
#define KLEVDB_FAULT_H

#ifdef KLEVDB_FAULTS
void kfault_point(void);
void kfault_bg_point(void);
#define FAULT_POINT() kfault_point()
#define FAULT_BG_POINT() kfault_bg_point()
#else
#define FAULT_POINT() ((void)0)
#define FAULT_BG_POINT() ((void)0)
#endif

#endif
