# dkv_compiler_flag.m4 -- probe the C compiler for warning flags.
#
# DKV_CHECK_CFLAG(FLAG)
# ---------------------
# Append FLAG to WARN_CFLAGS if $CC compiles a trivial program with it under
# -Werror (so a compiler that merely warns about an unknown flag, as clang
# does, counts as not accepting it).  A -Wno-X flag is probed as -WX, since
# gcc accepts any -Wno-X silently.  The result is cached per flag in
# dkv_cv_cflag_<flag>.  Call it after AC_PROG_CC and after WARN_CFLAGS has its
# base value; AC_SUBST([WARN_CFLAGS]) stays the caller's job.
#
# Example:
#   DKV_CHECK_CFLAG([-Wimplicit-fallthrough])
#   DKV_CHECK_CFLAG([-Wnull-dereference])
#
# Copyright (c) 2026, the dynkv developers.  BSD 2-clause, see COPYING.

#serial 1

AC_DEFUN([DKV_CHECK_CFLAG], [
	AS_VAR_PUSHDEF([dkv_cache], [dkv_cv_cflag_$1])
	AC_CACHE_CHECK([whether $CC accepts $1], [dkv_cache], [
		dkv_save_CFLAGS=$CFLAGS
		AS_CASE([$1],
			[-Wno-*], [dkv_probe_flag=-W`expr "x$1" : 'x-Wno-\(.*\)'`],
			[dkv_probe_flag=$1])
		CFLAGS="$CFLAGS -Werror $dkv_probe_flag"
		AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[]], [[return 0;]])],
			[AS_VAR_SET([dkv_cache], [yes])],
			[AS_VAR_SET([dkv_cache], [no])])
		CFLAGS=$dkv_save_CFLAGS
	])
	AS_VAR_IF([dkv_cache], [yes],
		[WARN_CFLAGS="${WARN_CFLAGS:+$WARN_CFLAGS }$1"])
	AS_VAR_POPDEF([dkv_cache])
])
