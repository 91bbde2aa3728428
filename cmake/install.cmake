# What `cmake --install` puts in place (included from the top CMakeLists.txt):
#   include/kinsync.h, include/kinsync/*.h (public headers only; src/ and idlc's output stay inside)
#   lib/libkinsync.so.X.Y.Z (+ SONAME and dev links), lib/libkinsync.a, the same for libkinsync-sim
#   lib/pkgconfig/kinsync.pc, kinsync-sim.pc
#   lib/cmake/kinsync/ (find_package(kinsync): kinsync::kinsync, kinsync::sim, *_static)
#   bin/kinsync, share/man/man1/kinsync.1 and kinsync-COMMAND.1, share/doc/kinsync/, share/kinsync/
include(CMakePackageConfigHelpers)
set(KS_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/kinsync)

install(FILES ${CMAKE_SOURCE_DIR}/include/kinsync.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/kinsync DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/generated/include/kinsync/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kinsync)

install(TARGETS kinsync_core kinsync_core_static kinsync_sim kinsync_sim_static EXPORT kinsyncTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT kinsyncTargets NAMESPACE kinsync:: DESTINATION ${KS_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/kinsyncConfig.cmake.in
  ${CMAKE_BINARY_DIR}/generated/kinsyncConfig.cmake INSTALL_DESTINATION ${KS_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/generated/kinsyncConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/generated/kinsyncConfig.cmake ${CMAKE_BINARY_DIR}/generated/kinsyncConfigVersion.cmake
  DESTINATION ${KS_CMAKEDIR})

# prefix relative to the .pc file, so an install moved or made with --prefix stays right
file(RELATIVE_PATH KS_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_SOURCE_DIR}/cmake/kinsync.pc.in ${CMAKE_BINARY_DIR}/generated/kinsync.pc @ONLY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/kinsync-sim.pc.in ${CMAKE_BINARY_DIR}/generated/kinsync-sim.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/generated/kinsync.pc ${CMAKE_BINARY_DIR}/generated/kinsync-sim.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The command (static on the libraries: it also uses internal calls) and a man page per command,
# made at build time from the command's own --help by scripts/manpages.sh (so they say what --help says).
install(TARGETS kinsync_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/kinsync.1
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/manpages.sh $<TARGET_FILE:kinsync_cli> ${CMAKE_BINARY_DIR}/man
  DEPENDS kinsync_cli ${CMAKE_SOURCE_DIR}/scripts/manpages.sh
  COMMENT "man pages from kinsync --help")
add_custom_target(manpages ALL DEPENDS ${CMAKE_BINARY_DIR}/man/kinsync.1)
install(DIRECTORY ${CMAKE_BINARY_DIR}/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/rigs ${CMAKE_SOURCE_DIR}/examples/boards
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kinsync)
